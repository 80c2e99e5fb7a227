"""`vlmrl verifier`: serve a verifier model with vLLM and check that one answers correctly."""

from __future__ import annotations

import asyncio
import importlib.util
import os
import shlex
import sys
from pathlib import Path

import typer
from rich.table import Table

from vlmrl.cli._common import console
from vlmrl.errors import UserError

_HELP = """Serve or health-check the verifier model (e.g. xVerify on vLLM).

The reward asks the verifier only when its rules cannot decide. Serve one on a GPU host with
`vlmrl verifier serve --model PATH`, then point training at it with
REWARD_MODEL_URL=http://HOST:PORT/v1 and REWARD_MODEL_NAME=NAME (or reward.verifier.url/model).
"""

# (question, model output, correct answer, expected verdict): one easy pair each way.
_PROBES = (
    ("What is 1/2 + 1/4?", "Adding the fractions gives \\frac{3}{4}.", "0.75", "correct"),
    ("What is 1/2 + 1/4?", "Adding the fractions gives \\frac{2}{6}.", "0.75", "incorrect"),
)


def serve_command(
    model: str,
    host: str,
    port: int,
    served_model_name: str,
    max_model_len: int,
    gpu_memory_utilization: float,
    tensor_parallel_size: int,
    dtype: str,
    extra: list[str],
) -> list[str]:
    return [
        sys.executable,
        "-m",
        "vllm.entrypoints.openai.api_server",
        "--model",
        model,
        "--served-model-name",
        served_model_name,
        "--host",
        host,
        "--port",
        str(port),
        "--max-model-len",
        str(max_model_len),
        "--gpu-memory-utilization",
        str(gpu_memory_utilization),
        "--tensor-parallel-size",
        str(tensor_parallel_size),
        "--dtype",
        dtype,
        "--enable-chunked-prefill",
        # Without this vLLM applies the model's generation_config.json to every request field we
        # leave out; the reward sends xVerify's own temperature/top_p and wants nothing else.
        "--generation-config",
        "vllm",
        *extra,
    ]


def register(app: typer.Typer) -> None:
    group = typer.Typer(help=_HELP, no_args_is_help=True, rich_markup_mode="rich")

    @group.command("serve", context_settings={"allow_extra_args": True, "ignore_unknown_options": True})
    def serve(
        ctx: typer.Context,
        model: str = typer.Option(
            ..., help="Local directory or hub id of the verifier (e.g. an xVerify model)."
        ),
        host: str = typer.Option(
            "0.0.0.0", help="Interface to listen on (0.0.0.0 = reachable from workers)."
        ),
        port: int = typer.Option(8888, help="Port of the OpenAI-compatible API."),
        served_model_name: str | None = typer.Option(
            None, help="Name clients send as `model` (default: the model directory's name)."
        ),
        max_model_len: int = typer.Option(8192, help="Context length; prompt + answer must fit."),
        gpu_memory_utilization: float = typer.Option(0.9, help="Share of GPU memory vLLM may take."),
        tensor_parallel_size: int = typer.Option(1, help="GPUs to shard the verifier over."),
        dtype: str = typer.Option("auto", help="Weights dtype (auto, bfloat16, float16)."),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Print the vLLM command instead of running it."
        ),
    ) -> None:
        """Start vLLM's OpenAI-compatible server for the verifier (extra arguments go to vLLM).

        Example: vlmrl verifier serve --model /models/xVerify-0.5B-I --port 8888
        """
        name = served_model_name or Path(model.rstrip("/")).name or model
        cmd = serve_command(
            model,
            host,
            port,
            name,
            max_model_len,
            gpu_memory_utilization,
            tensor_parallel_size,
            dtype,
            ctx.args,
        )
        printable = shlex.join(["python"] + cmd[1:])
        if dry_run:
            console.print(printable, highlight=False, soft_wrap=True)
            return
        if importlib.util.find_spec("vllm") is None:
            raise UserError(
                "vLLM is not installed in this environment. On a GPU machine run `pip install vllm` and "
                "retry, or start the server on the GPU host yourself with:\n  "
                + printable
                + f"\nthen set REWARD_MODEL_URL=http://<that host>:{port}/v1 REWARD_MODEL_NAME={name}"
            )
        console.print(f"starting: {printable}", highlight=False, soft_wrap=True)
        console.print(f"then: export REWARD_MODEL_URL=http://<this host>:{port}/v1 REWARD_MODEL_NAME={name}")
        sys.stdout.flush()
        os.execv(cmd[0], cmd)

    @group.command("check")
    def check(
        url: str | None = typer.Option(
            None, help="Verifier base URL, e.g. http://host:8888/v1 (default $REWARD_MODEL_URL)."
        ),
        model: str | None = typer.Option(
            None,
            help="Served model name (default $REWARD_MODEL_NAME, else the first model the server lists).",
        ),
        timeout_s: float = typer.Option(30.0, help="Per-request timeout."),
    ) -> None:
        """Health check plus one known-correct and one known-wrong judgement; exit 1 if any fails.

        Example: vlmrl verifier check --url http://host:8888/v1 --model xVerify-0.5B-I
        """
        from vlmrl.reward import verifier as vf

        url = url or os.environ.get("REWARD_MODEL_URL")
        if not url:
            raise UserError("no verifier URL: pass --url http://HOST:PORT/v1 or set $REWARD_MODEL_URL")
        ok, detail = asyncio.run(vf.health(url, timeout_s))
        table = Table(title=f"verifier check: {url}")
        table.add_column("check")
        table.add_column("expected")
        table.add_column("got")
        table.add_column("result")
        table.add_row("GET /models", "200", detail, "[green]ok[/]" if ok else "[red]FAIL[/]")
        model = model or os.environ.get("REWARD_MODEL_NAME") or (detail.split(", ")[0] if ok else None)
        failures = 0 if ok else 1
        if ok and model:
            settings = vf.VerifierSettings(url=url, model=model, timeout_s=timeout_s, max_retries=0)
            vf.reset_state()

            async def probe_all() -> list[vf.Judgement]:
                return list(await asyncio.gather(*(vf.judge(settings, q, o, a) for q, o, a, _ in _PROBES)))

            for (_, output, answer, expected), j in zip(_PROBES, asyncio.run(probe_all()), strict=True):
                got = j.verdict or (f"error: {j.detail}" if j.error else f"undecided: {j.detail}")
                good = j.verdict == expected
                failures += not good
                table.add_row(
                    f"{output!r} vs {answer}", expected, got, "[green]ok[/]" if good else "[red]FAIL[/]"
                )
        console.print(table)
        if failures:
            console.print(f"[red]{failures} check(s) failed[/] (model: {model})")
            raise typer.Exit(1)
        console.print(f"[green]verifier {model} at {url} answers correctly[/]")

    app.add_typer(
        group, name="verifier", help="Serve or health-check the verifier model (e.g. xVerify on vLLM)."
    )
