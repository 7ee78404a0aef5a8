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
