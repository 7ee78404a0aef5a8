"""The exported train file is what TRL expects: `datasets.load_dataset("json")` reads it and TRL's RewardTrainer
trains on it unchanged (extra columns and the margin included). Tiny random BERT, CPU, offline."""

import io

import pytest
from django.core.management import call_command

from tests.factories import ProjectFactory, PromptFactory, labeler, ranking_make

pytestmark = pytest.mark.slow


def _tokenizer(texts: list[str]):
    """A small WordPiece tokenizer trained here on the export's texts (no hub)."""
    from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    special = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    tok = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tok.normalizer = normalizers.BertNormalizer(lowercase=True)
    tok.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    tok.train_from_iterator(texts, trainers.WordPieceTrainer(vocab_size=400, special_tokens=special))
    cls, sep = tok.token_to_id("[CLS]"), tok.token_to_id("[SEP]")
    tok.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]", special_tokens=[("[CLS]", cls), ("[SEP]", sep)]
    )
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", pad_token="[PAD]", cls_token="[CLS]",
                                   sep_token="[SEP]", eos_token="[SEP]", mask_token="[MASK]")  # fmt: skip


@pytest.fixture
def exported(db, tmp_path):
    project = ProjectFactory(slug="rm")
    people = [labeler(project, username=f"rater{i}") for i in range(2)]
    for n in range(8):
        texts = [f"answer {k} to question {n}: " + "words " * (k + 1) for k in range(4)]
        prompt = PromptFactory(project=project, category=("qa", "chat")[n % 2], responses=texts)
        for person, ranks in zip(people, ([1, 2, 3, 4], [1, 3, 2, 4]), strict=True):
            ranking_make(prompt, person, ranks)
    call_command("export_preferences", "--project", "rm", "--out", str(tmp_path / "export"), "--test-ratio", "0",
                 "--margin", "rank-diff", "--no-progress", stdout=io.StringIO())  # fmt: skip
    return tmp_path / "export" / "train.jsonl"


def test_exported_jsonl_loads_with_datasets_and_trains_a_reward_model(exported, tmp_path):
    import torch
    from datasets import load_dataset
    from transformers import BertConfig, BertForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    dataset = load_dataset("json", data_files=str(exported), split="train", cache_dir=str(tmp_path / "cache"))
    assert dataset.num_rows == 8 * 12 and dataset.column_names[:4] == ["prompt", "chosen", "rejected", "margin"]
    assert {"prompt_id", "chosen_id", "rejected_id", "category", "ranking_id"} <= set(dataset.column_names)

    tokenizer = _tokenizer([row[name] for row in dataset for name in ("prompt", "chosen", "rejected")])
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1,
                        pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    model = BertForSequenceClassification(config)
    before = {name: p.detach().clone() for name, p in model.named_parameters()}
    args = RewardConfig(output_dir=str(tmp_path / "rm"), max_steps=3, per_device_train_batch_size=2, bf16=False,
                        report_to="none", logging_steps=1, save_strategy="no", use_cpu=True,
                        max_length=128)  # fmt: skip

    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)
    trainer.train()

    losses = [entry["loss"] for entry in trainer.state.log_history if "loss" in entry]
    assert len(losses) == 3 and all(loss == loss and loss > 0 for loss in losses)  # logged and not NaN
    moved = [name for name, p in model.named_parameters() if not torch.equal(p.detach().cpu(), before[name])]
    assert "classifier.weight" in moved and len(moved) > len(before) // 2


@pytest.fixture
def exported_pairwise(db, tmp_path):
    """A pairwise project (Llama 2 style): A/B judgments with a strength, exported with --margin strength."""
    from annotation.services.assignments import assignment_next
    from annotation.services.projects import project_create
    from annotation.services.rankings import ranking_submit

    project = project_create(name="AB", slug="ab", kind="pairwise", overlap=2)
    for n in range(8):
        PromptFactory(project=project, responses=[f"good answer {n} " + "words " * 3, f"bad answer {n}"])
    for strength in (1, 4):
        user = labeler(project)
        while (assignment := assignment_next(project=project, labeler=user)) is not None:
            good = assignment.prompt.responses.get(index=0).id
            ranks = {rid: 1 if rid == good else 2 for rid in assignment.shown_order}
            ranking_submit(labeler=user, assignment_id=assignment.id, ranks=ranks, strength=strength)
    call_command("export_preferences", "--project", "ab", "--out", str(tmp_path / "export"), "--test-ratio", "0",
                 "--margin", "strength", "--no-progress", stdout=io.StringIO())  # fmt: skip
    return tmp_path / "export" / "train.jsonl"


def test_strength_margins_reach_the_reward_trainers_loss(exported_pairwise, tmp_path):
    """TRL's RewardTrainer reads the exported margin column and subtracts it in its loss, as Llama 2's margin loss
    does: -log sigmoid(r_chosen - r_rejected - m(strength)), m = 3 for "significantly better", 0 for "negligibly"."""
    import torch
    from datasets import load_dataset
    from transformers import BertConfig, BertForSequenceClassification
    from trl import RewardConfig, RewardTrainer

    dataset = load_dataset("json", data_files=str(exported_pairwise), split="train", cache_dir=str(tmp_path / "c"))
    assert sorted(set(dataset["margin"])) == [0.0, 3.0] and dataset.num_rows == 16
    tokenizer = _tokenizer([row[name] for row in dataset for name in ("prompt", "chosen", "rejected")])
    torch.manual_seed(0)
    config = BertConfig(vocab_size=len(tokenizer), hidden_size=32, num_hidden_layers=1, num_attention_heads=2,
                        intermediate_size=64, max_position_embeddings=128, num_labels=1,
                        pad_token_id=tokenizer.pad_token_id)  # fmt: skip
    model = BertForSequenceClassification(config)
    args = RewardConfig(output_dir=str(tmp_path / "rm"), max_steps=2, per_device_train_batch_size=4, bf16=False,
                        report_to="none", logging_steps=1, save_strategy="no", use_cpu=True, max_length=128,
                        center_rewards_coefficient=None)  # fmt: skip
    trainer = RewardTrainer(model=model, args=args, train_dataset=dataset, processing_class=tokenizer)

    batch = next(iter(trainer.get_train_dataloader()))
    assert "margin" in batch and set(batch["margin"].tolist()) <= {0.0, 3.0}
    model.eval()
    with torch.no_grad():
        with_margin = trainer.compute_loss(model, batch).item()
        chosen = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits.squeeze(-1)
        half = len(chosen) // 2
        diff = chosen[:half] - chosen[half:]
        expected = -torch.nn.functional.logsigmoid(diff - batch["margin"]).mean().item()
        without = -torch.nn.functional.logsigmoid(diff).mean().item()
    assert with_margin == pytest.approx(expected, rel=1e-4)
    if batch["margin"].any():
        assert with_margin > without  # the margin asks for a wider gap: a higher loss at the same rewards
    trainer.train()
    assert all(entry["loss"] == entry["loss"] for entry in trainer.state.log_history if "loss" in entry)
