"""Text-only micro-batches on Qwen3-VL: veRL 0.9.1's own forward handles them, no vlmrl fix needed.

veRL's `qwen3_vl._get_input_embeds` runs the vision tower on a dummy image when a micro-batch has no
pixels and unpacks transformers 5.x's output object itself (its Qwen2.5-VL twin does not, which
`vlmrl.train.verl.patches` fixes). Checked here on the tiny Qwen3-VL with veRL's monkey patch applied,
as veRL's FSDP worker applies it.
"""

from __future__ import annotations

import torch


def test_text_only_forward_keeps_the_vision_tower_in_the_graph(tiny_qwen3_vl_path):
    from transformers import AutoProcessor, Qwen3VLForConditionalGeneration
    from verl.models.transformers import qwen3_vl
    from verl.models.transformers.monkey_patch import apply_monkey_patch

    import vlmrl.train.verl.patches  # noqa: F401 (what veRL's external_lib imports first)

    processor = AutoProcessor.from_pretrained(tiny_qwen3_vl_path)
    model = Qwen3VLForConditionalGeneration.from_pretrained(tiny_qwen3_vl_path, dtype=torch.float32)
    apply_monkey_patch(model, use_remove_padding=False)
    text = processor.apply_chat_template(
        [{"role": "user", "content": "What is 2 + 3?"}], add_generation_prompt=True, tokenize=False
    )
    ids = processor(text=[text], return_tensors="pt")["input_ids"]
    # veRL calls it from Qwen3VLModel.forward, with the inner model
    out = qwen3_vl._get_input_embeds(model.model, ids, torch.ones_like(ids))  # no pixel_values
    assert out["inputs_embeds"].shape == (1, ids.shape[1], model.config.text_config.hidden_size)
    assert out["deepstack_visual_embeds"] is None
    # the whole patched forward, as veRL's actor runs it, and a backward through it
    positions = torch.arange(ids.shape[1]).view(1, 1, -1).expand(3, 1, -1)
    logits = model(input_ids=ids, attention_mask=torch.ones_like(ids), position_ids=positions).logits
    logits.float().logsumexp(-1).mean().backward()
    visual = [p.grad for p in model.model.visual.parameters()]
    assert all(g is not None for g in visual)  # the tower ran (same collectives on every rank)
    assert all(float(g.abs().sum()) == 0.0 for g in visual)  # ... and learns nothing from text rows
    assert any(float(p.grad.abs().sum()) > 0 for p in model.model.language_model.parameters())
