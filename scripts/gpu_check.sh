#!/usr/bin/env bash
# GPU check (NOT part of `make test`: the development machine has no GPU). Run it on a machine with CUDA:
#
#     bash scripts/gpu_check.sh            # or: PY=/path/to/python N_PAIRS=2000 bash scripts/gpu_check.sh
#
# What it proves, when it prints its JSON line with "ok": true:
#   1. the launcher path the worker uses for `launcher: accelerate:gpu_ddp` works on real hardware: the default chain
#      (SmolLM2-135M-Instruct -> SFT -> reward model -> PPO, the real default models, prepared offline) runs as
#      `accelerate launch --config_file configs/accelerate/gpu_ddp.yaml -m rlhf.training.chain --config ...`, with
#      num_processes set to the number of visible GPUs (world_size in the output);
#   2. bf16 is on (the stages' bf16 'auto' resolves to true on a GPU with bf16: bf16_resolved in the output);
#   3. each stage's speed (steps/s) and the GPU memory peak (nvidia-smi, MiB), and the chain's figures: the reward
#      model's held-out accuracy and PPO's held-out reward before / after (in reward SDs).
# PROCS (default: every visible GPU) sets num_processes; PROCS=1 checks one GPU. The multi-process path is verified on
# CPU for the reward model (tests, bench/scale.py); with several GPUs this script is also the first multi-GPU run of
# the SFT and PPO stages.
# Data: the HH-RLHF helpful slices in ../shared/data (N_PAIRS training pairs, the first 200 dev pairs held out).
# The last line of stdout is one JSON object; the exit status is 0 only when the chain succeeded on a GPU.
set -euo pipefail

ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${PY:-$ROOT/.venv/bin/python}"
N_PAIRS="${N_PAIRS:-1000}"
WORK="${WORK:-$(mktemp -d /tmp/gpu_check.XXXXXX)}"
cd "$ROOT"

GPUS="$(nvidia-smi -L 2>/dev/null | wc -l || true)"
if [ "${GPUS:-0}" -lt 1 ]; then
  echo '{"ok": false, "error": "no CUDA GPU visible (nvidia-smi -L)"}'
  exit 1
fi

# gpu_ddp.yaml with num_processes = PROCS (default: the GPUs here).
PROCS="${PROCS:-$GPUS}"
sed "s/^num_processes: .*/num_processes: $PROCS/" configs/accelerate/gpu_ddp.yaml > "$WORK/accelerate.yaml"

# The chain's inputs from the HH slices: demonstrations (prompt + chosen), pairs, prompts; the dev pairs held out.
"$PY" - "$WORK" "$N_PAIRS" <<'EOF'
import json, sys
from pathlib import Path
work, n = Path(sys.argv[1]), int(sys.argv[2])
data = Path("..") / "shared" / "data"
train = [json.loads(l) for l in (data / "hh_helpful_train.jsonl").read_text().splitlines() if l.strip()][:n]
dev = [json.loads(l) for l in (data / "hh_helpful_dev.jsonl").read_text().splitlines() if l.strip()][:200]
def write(name, rows):
    (work / name).write_text("".join(json.dumps(r) + "\n" for r in rows))
write("sft.jsonl", [{"prompt": r["prompt"], "completion": r["chosen"]} for r in train])
write("pairs.jsonl", [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in train])
write("eval_pairs.jsonl", [{k: r[k] for k in ("prompt", "chosen", "rejected")} for r in dev])
write("prompts.jsonl", [{"prompt": r["prompt"]} for r in train])
write("eval_prompts.jsonl", [{"prompt": r["prompt"]} for r in dev[:32]])
(work / "chain.yaml").write_text(json.dumps({
    "base_model": "default", "output_dir": str(work / "chain"), "sft_file": str(work / "sft.jsonl"),
    "pairs_file": str(work / "pairs.jsonl"), "eval_pairs_file": str(work / "eval_pairs.jsonl"),
    "prompts_file": str(work / "prompts.jsonl"), "eval_prompts_file": str(work / "eval_prompts.jsonl"),
    # A GPU affords more than the CPU preset's caps.
    "sft_max_steps": -1, "rm_max_steps": -1, "rm_method": "finetune", "rm_length_debias": "none",
    "ppo_total_episodes": 256,
}))
EOF

"$PY" manage.py prepare_models >/dev/null 2>&1 || "$PY" -c "from rlhf.training.models import prepare_smollm2; prepare_smollm2()"

# GPU memory, sampled every second while the chain runs.
nvidia-smi --query-gpu=memory.used --format=csv,noheader,nounits -l 1 > "$WORK/memory.csv" 2>/dev/null &
SAMPLER=$!
trap 'kill $SAMPLER 2>/dev/null || true' EXIT

START=$(date +%s)
set +e
RLHF_PROGRESS=json OMP_NUM_THREADS=4 "$PY" -m accelerate.commands.launch --config_file "$WORK/accelerate.yaml" \
  -m rlhf.training.chain --config "$WORK/chain.yaml" > "$WORK/chain.log" 2>&1
STATUS=$?
set -e
END=$(date +%s)
kill $SAMPLER 2>/dev/null || true

"$PY" - "$WORK" "$STATUS" "$((END - START))" "$GPUS" <<'EOF'
import json, sys
from pathlib import Path
work, status, wall, gpus = Path(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
def metrics(stage):
    f = work / "chain" / stage / "metrics.json"
    return json.loads(f.read_text()) if f.is_file() else {}
def rate(m, steps, seconds):
    return round(m[steps] / m[seconds], 3) if m.get(steps) and m.get(seconds) else None
sft, rm, ppo = metrics("sft"), metrics("reward"), metrics("ppo")
config = work / "chain" / "reward" / "training_config.json"
resolved = json.loads(config.read_text()) if config.is_file() else {}
memory = [int(x) for x in (work / "memory.csv").read_text().split() if x.strip().isdigit()] if (work / "memory.csv").exists() else []
result = {
    "ok": status == 0 and bool(ppo),
    "exit_status": status, "wall_s": wall, "gpus": gpus, "world_size": rm.get("train/world_size"),
    "launcher": "accelerate:gpu_ddp", "bf16_resolved": resolved.get("bf16_resolved"),
    "sft_steps_per_s": rate(sft, "sft/steps", "sft/runtime_s"),
    "rm_steps_per_s": rate(rm, "train/steps", "train/runtime_s"),
    "ppo_steps_per_s": rate(ppo, "ppo/steps", "ppo/train_runtime_s"),
    "gpu_memory_peak_mib": max(memory) if memory else None,
    "rm_accuracy": rm.get("eval/accuracy"),
    "ppo_eval_reward_before": ppo.get("ppo/eval_reward_before"),
    "ppo_eval_reward_after": ppo.get("ppo/eval_reward_after"),
    "ppo_gain_std": ppo.get("ppo/eval_reward_gain_std"),
    "log": str(work / "chain.log"),
}
if status != 0:
    result["error_tail"] = (work / "chain.log").read_text()[-1500:]
print(json.dumps(result))
sys.exit(0 if result["ok"] else 1)
EOF
