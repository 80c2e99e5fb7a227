"""`vlmrl verifier`: serve a verifier model with vLLM and check that one answers correctly.

Starting, probing and stopping the server and the checks are `vlmrl.reward.verifier_service`'s;
this module parses and prints.
"""

from __future__ import annotations

import signal
import sys
from pathlib import Path

import typer
from rich.table import Table

from vlmrl.cli._common import (
    Command,
    GpuMemoryUtilization,
    MaxModelLen,
    TensorParallelSize,
    console,
    deprecated_alias,
    err_console,
    new_group,
    prefer,
    served_model_name_option,
)
from vlmrl.errors import UserError

_HELP = """Serve or health-check the verifier model (e.g. xVerify on vLLM).

The reward asks the verifier only when its rules cannot decide. Serve one on a GPU host with
`vlmrl verifier serve --model PATH`, then point training at it with
REWARD_MODEL_URL=http://HOST:PORT/v1, REWARD_MODEL_NAME=NAME and REWARD_MODEL_API_KEY=KEY (or
reward.verifier.url/model). A server that listens beyond this machine requires that key.
"""

_API_KEY_HELP = (
    "Key clients must send (Authorization: Bearer KEY). Required when --host is not loopback: "
    "without one a random key is generated and printed with the lines to export."
)


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


def register(app: typer.Typer) -> None:
    group = new_group(_HELP)

    @group.command(
        "serve", cls=Command, context_settings={"allow_extra_args": True, "ignore_unknown_options": True}
    )
    def serve(
        ctx: typer.Context,
        model: str = typer.Option(
            ..., help="Local directory or hub id of the verifier (e.g. an xVerify model)."
        ),
        host: str = typer.Option(
            "0.0.0.0",
            help="Interface to listen on (0.0.0.0 = reachable from workers, with an API key; 127.0.0.1 = this host).",
        ),
        port: int = typer.Option(8888, help="Port of the OpenAI-compatible API."),
        served_model_name: str | None = served_model_name_option(
            "Name the model is served under, which clients send as `model` (default: the model directory's name)."
        ),
        max_model_len: MaxModelLen = 8192,
        gpu_memory_utilization: GpuMemoryUtilization = 0.9,
        tensor_parallel_size: TensorParallelSize = 1,
        dtype: str = typer.Option("auto", help="Weights dtype (auto, bfloat16, float16, float32)."),
        ready_timeout: float = typer.Option(
            900.0, help="Seconds to wait for the server to list the model before giving up."
        ),
        log_file: Path | None = typer.Option(
            None, help="Write vLLM's output to this file instead of the terminal."
        ),
        dry_run: bool = typer.Option(
            False, "--dry-run", help="Print the vLLM command instead of running it."
        ),
        api_key: str | None = typer.Option(
            None, "--api-key", envvar="REWARD_MODEL_API_KEY", show_envvar=True, help=_API_KEY_HELP
        ),
    ) -> None:
        """Start vLLM's OpenAI-compatible server for the verifier, wait until it answers, print the
        settings for training, and keep it running until Ctrl-C (arguments after `--` go to vLLM).

        A server on every interface (the default 0.0.0.0) lets in only requests that carry its API key:
        --api-key (or $REWARD_MODEL_API_KEY), else one generated here and printed as
        `export ... REWARD_MODEL_API_KEY=...`. vLLM gets it through $VLLM_API_KEY, not its command line.

        Example: vlmrl verifier serve --model /models/xVerify-0.5B-I --port 8888
        On a CPU: vlmrl verifier serve --model DIR --host 127.0.0.1 --dtype float32 -- --enforce-eager
        """
        from vlmrl.reward import verifier_service as sv

        name = sv.served_name(model, served_model_name)
        options = dict(
            max_model_len=max_model_len,
            gpu_memory_utilization=gpu_memory_utilization,
            tensor_parallel_size=tensor_parallel_size,
            dtype=dtype,
            extra=list(ctx.args),
        )
        cmd = sv.serve_command(model, host=host, port=port, served_model_name=name, **options)
        if dry_run:
            key_note = ""
            if api_key:
                key_note = "VLLM_API_KEY=<--api-key> "
            elif not sv.is_loopback(host):
                key_note = "VLLM_API_KEY=<generated at start> "
            console.print(key_note + sv.printable(cmd), highlight=False, soft_wrap=True)
            return
        sv.require_vllm(cmd, port, name)
        err_console.print(f"starting: {sv.printable(cmd)}", highlight=False, soft_wrap=True)
        # SIGTERM (e.g. from a job scheduler) stops vLLM too, like Ctrl-C, also while it loads.
        signal.signal(signal.SIGTERM, _interrupt)
        api_key, generated = sv.server_api_key(host, api_key)
        if generated:
            err_console.print(
                f"{host} is reachable beyond this machine: the server requires an API key, generated for this run "
                "(pass --api-key or set REWARD_MODEL_API_KEY to choose it)",
                highlight=False,
                soft_wrap=True,
            )
        try:
            with err_console.status("waiting for vLLM to load the model ...") as status:
                server, seconds = sv.serve_verifier(
                    model,
                    host=host,
                    port=port,
                    served_model_name=name,
                    api_key=api_key,
                    log_path=log_file,
                    ready_timeout_s=ready_timeout,
                    on_wait=lambda s: status.update(f"waiting for vLLM to load the model ... {s:.0f} s"),
                    **options,
                )
        except KeyboardInterrupt:
            err_console.print("interrupted: vLLM stopped before it was ready")
            raise typer.Exit(130) from None
        try:
            shown = api_key if generated else ("<your --api-key>" if api_key else None)
            console.print(
                f"ready in {seconds:.0f} s (pid {server.pid}): {server.url} serves {name}"
                + (" (requests need the API key)" if api_key else "")
                + f"\n{sv.export_lines(host, port, name, shown)}",
                highlight=False,
                soft_wrap=True,
                markup=False,
            )
            sys.stdout.flush()
            code = server.process.wait()
        except KeyboardInterrupt:
            err_console.print("stopping vLLM ...")
            return
        finally:
            server.stop()
        if code:
            raise UserError(f"vLLM exited with code {code}" + (f"; see {log_file}" if log_file else ""))

    @group.command("check", cls=Command)
    def check(
        url: str | None = typer.Option(
            None, help="Verifier base URL, e.g. http://host:8888/v1 (default $REWARD_MODEL_URL)."
        ),
        served_model_name: str | None = served_model_name_option(
            "Name the verifier is served under (default $REWARD_MODEL_NAME, else the one model the server lists)."
        ),
        model: str | None = deprecated_alias("--served-model-name", "--model"),
        timeout_s: float = typer.Option(30.0, help="Seconds to wait for each answer."),
        api_key: str | None = typer.Option(
            None,
            "--api-key",
            envvar="REWARD_MODEL_API_KEY",
            show_envvar=True,
            help="The key the verifier server requires (printed by `vlmrl verifier serve`).",
        ),
    ) -> None:
        """Health check plus one known-correct and one known-wrong judgement; exit 1 if any fails.

        Example: vlmrl verifier check --url http://host:8888/v1 --served-model-name xVerify-0.5B-I
        """
        from vlmrl.reward.verifier_service import check_verifier

        model = prefer(served_model_name, model, "--model", "--served-model-name")
        report = check_verifier(url, model, timeout_s, api_key)
        table = Table(title=f"verifier check: {report.url}")
        for col in ("check", "expected", "got", "result"):
            table.add_column(col)
        for row in report.results:
            table.add_row(row.check, row.expected, row.got, "[green]ok[/]" if row.ok else "[red]FAIL[/]")
        console.print(table)
        if report.failures:
            console.print(f"[red]{report.failures} check(s) failed[/] (model: {report.model or 'none'})")
            raise typer.Exit(1)
        console.print(f"[green]verifier {report.model} at {report.url} answers correctly[/]")

    app.add_typer(
        group, name="verifier", help="Serve or health-check the verifier model (e.g. xVerify on vLLM)."
    )
