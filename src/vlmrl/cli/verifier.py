"""`vlmrl verifier`: serve a verifier model with vLLM and check that one answers correctly.

The command and the checks are `vlmrl.reward.verifier_service`'s; this module parses and prints.
"""

from __future__ import annotations

import os
import sys

import typer
from rich.table import Table

from vlmrl.cli._common import console

_HELP = """Serve or health-check the verifier model (e.g. xVerify on vLLM).

The reward asks the verifier only when its rules cannot decide. Serve one on a GPU host with
`vlmrl verifier serve --model PATH`, then point training at it with
REWARD_MODEL_URL=http://HOST:PORT/v1 and REWARD_MODEL_NAME=NAME (or reward.verifier.url/model).
"""


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
        from vlmrl.reward import verifier_service as service

        name = service.served_name(model, served_model_name)
        cmd = service.serve_command(
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
        if dry_run:
            console.print(service.printable(cmd), highlight=False, soft_wrap=True)
            return
        service.require_vllm(cmd, port, name)
        console.print(f"starting: {service.printable(cmd)}", highlight=False, soft_wrap=True)
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
        from vlmrl.reward.verifier_service import check_verifier

        result = check_verifier(url, model, timeout_s)
        table = Table(title=f"verifier check: {result.url}")
        for col in ("check", "expected", "got", "result"):
            table.add_column(col)
        for r in result.results:
            table.add_row(r.check, r.expected, r.got, "[green]ok[/]" if r.ok else "[red]FAIL[/]")
        console.print(table)
        if result.failures:
            console.print(f"[red]{result.failures} check(s) failed[/] (model: {result.model})")
            raise typer.Exit(1)
        console.print(f"[green]verifier {result.model} at {result.url} answers correctly[/]")

    app.add_typer(
        group, name="verifier", help="Serve or health-check the verifier model (e.g. xVerify on vLLM)."
    )
