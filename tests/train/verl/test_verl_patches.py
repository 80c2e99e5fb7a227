"""vlmrl.train.verl.patches on the tiny Qwen2.5-VL, on CPU, through veRL's real apply_monkey_patch path.

The probe runs in a fresh interpreter: the fixes patch veRL modules process-wide, and the "without"
half must see veRL exactly as installed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import warnings

import pytest

PROBE = textwrap.dedent(
    r"""
    import json, sys, torch
    from PIL import Image
    from transformers import AutoProcessor, Qwen2_5_VLForConditionalGeneration

    path = sys.argv[1]
    proc = AutoProcessor.from_pretrained(path)
    result = {}

    def fresh_model():
        torch.manual_seed(0)
        return Qwen2_5_VLForConditionalGeneration.from_pretrained(path, dtype=torch.float32)

    def sample(with_image):
        from verl.models.transformers.qwen2_vl import get_rope_index
        content = ([{"type": "image"}] if with_image else []) + [{"type": "text", "text": "what is 1+1"}]
        text = proc.apply_chat_template([{"role": "user", "content": content}], add_generation_prompt=True, tokenize=False)
        images = [Image.new("RGB", (56, 56), (120, 10, 10))] if with_image else None
        enc = proc(text=[text], images=images, return_tensors="pt")
        ids, mask = enc["input_ids"][0], enc["attention_mask"][0]
        vision = get_rope_index(proc, ids, image_grid_thw=enc.get("image_grid_thw"), attention_mask=mask)
        # veRL's layout: (4, seq) = text positions on top of the 3 M-RoPE rows.
        pos = torch.cat([torch.arange(ids.shape[0]).unsqueeze(0), vision], 0)
        return ids, mask, pos, enc.get("pixel_values"), enc.get("image_grid_thw")

    def micro_batch(kinds):
        samples = [sample(k) for k in kinds]
        length = max(s[0].shape[0] for s in samples)
        pad = lambda t, v: torch.nn.functional.pad(t, (0, length - t.shape[-1]), value=v)
        batch = dict(
            input_ids=torch.stack([pad(s[0], 0) for s in samples]),
            attention_mask=torch.stack([pad(s[1], 0) for s in samples]),
            position_ids=torch.stack([pad(s[2], 0) for s in samples], dim=1),
        )
        pix = [s[3] for s in samples if s[3] is not None]
        if pix:
            batch["pixel_values"] = torch.cat(pix)
            batch["image_grid_thw"] = torch.cat([s[4] for s in samples if s[4] is not None])
        return batch

    def train_step(model, batch):
        model.zero_grad(set_to_none=True)
        out = model(**batch)
        (out.logits.float() * batch["attention_mask"].unsqueeze(-1)).mean().backward()
        grads = [p.grad for n, p in model.named_parameters() if ".visual." in n or n.startswith("visual.")]
        return {
            "vision_params": len(grads),
            "vision_grads_none": sum(g is None for g in grads),
            "vision_grad_abs_sum": float(sum(g.abs().sum() for g in grads if g is not None)),
            "finite": bool(torch.isfinite(out.logits).all()),
        }

    from verl.models.transformers.monkey_patch import apply_monkey_patch

    from verl.utils.import_utils import is_trl_available

    # 1. veRL as installed, TRL 1.x present: building the model crashes in apply_monkey_patch.
    try:
        apply_monkey_patch(fresh_model(), use_remove_padding=False)
        result["trl_present_without_fix"] = "ok"
    except Exception as exc:
        result["trl_present_without_fix"] = f"{type(exc).__name__}: {exc}"

    # 2. veRL as installed, TRL hidden (a veRL-only install): a text-only micro-batch crashes.
    sys.modules["trl"] = None
    is_trl_available.cache_clear()  # veRL caches the answer
    model = fresh_model()
    apply_monkey_patch(model, use_remove_padding=False)
    try:
        train_step(model, micro_batch([False]))
        result["without_fix"] = "ok"
    except Exception as exc:
        result["without_fix"] = f"{type(exc).__name__}: {exc}"
    del sys.modules["trl"]
    is_trl_available.cache_clear()

    # 3. With our module imported (what external_lib does in each worker).
    import vlmrl.train.verl.patches as patches
    from verl.models.transformers import qwen2_vl
    fixed = qwen2_vl._get_input_embeds
    result["applied"] = [patches.APPLIED, patches.TRL_CHECK_APPLIED]
    result["idempotent"] = patches.apply() and patches.apply_trl_check() and qwen2_vl._get_input_embeds is fixed
    model = fresh_model()
    apply_monkey_patch(model, use_remove_padding=False)
    result["text_only"] = train_step(model, micro_batch([False, False]))
    result["mixed"] = train_step(model, micro_batch([True, False]))
    result["image_only"] = train_step(model, micro_batch([True]))
    print("RESULT " + json.dumps(result))
    """
)


@pytest.mark.slow
def test_text_only_micro_batch_fails_without_fix_and_trains_with_it(tiny_vlm_path, tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(PROBE)
    proc = subprocess.run(
        [sys.executable, str(script), str(tiny_vlm_path)], capture_output=True, text=True, timeout=600
    )
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert proc.returncode == 0 and lines, proc.stderr[-3000:]
    r = json.loads(lines[-1][len("RESULT ") :])

    assert "BaseModelOutputWithPooling" in r["without_fix"] and "mean" in r["without_fix"]
    assert "AutoModelForCausalLMWithValueHead" in r["trl_present_without_fix"]
    assert r["applied"] == [True, True] and r["idempotent"] is True

    text = r["text_only"]
    assert text["finite"] and text["vision_params"] > 0
    assert text["vision_grads_none"] == 0, "every vision-tower parameter must get a gradient (FSDP in step)"
    assert text["vision_grad_abs_sum"] == 0.0, "the dummy image must not move the vision tower"
    for kind in ("mixed", "image_only"):
        assert r[kind]["finite"] and r[kind]["vision_grads_none"] == 0
        assert r[kind]["vision_grad_abs_sum"] > 0.0


def test_version_guard_warns_and_leaves_other_verl_alone(monkeypatch):
    import verl
    from verl.models.transformers import qwen2_vl

    from vlmrl.train.verl import patches as verl_patches

    original = getattr(qwen2_vl._get_input_embeds, "__wrapped_original__", qwen2_vl._get_input_embeds)
    monkeypatch.setattr(qwen2_vl, "_get_input_embeds", original)
    monkeypatch.setattr(verl, "__version__", "0.10.0")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert verl_patches.apply() is False
    assert any(
        issubclass(w.category, verl_patches.PatchNotApplied) and "0.10.0" in str(w.message) for w in caught
    )
    assert qwen2_vl._get_input_embeds is original
    monkeypatch.setattr(verl, "__version__", "0.9.1")
    assert verl_patches.apply() is True
    assert verl_patches.is_applied() and qwen2_vl._get_input_embeds.__wrapped_original__ is original
