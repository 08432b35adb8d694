"""``dispatcher receiver``: the reference partner endpoint, for trying the sender out."""

from __future__ import annotations

from typing import Any

import click

from ..config.settings import DEFAULT_KEY


@click.command()
@click.option("--host", default="127.0.0.1", show_default=True)
@click.option("--port", default=8787, show_default=True, type=int)
@click.option("--key", default=DEFAULT_KEY, show_default=True, help="The X-Webhook-Key to accept.")
@click.option("--signing-secret", help="Also verify Standard Webhooks signatures with this whsec_ secret.")
def receiver(host: str, port: int, key: str, signing_secret: str | None) -> None:
    """Run the reference partner endpoint (accepts any path; dedupes on request_id)."""
    from ..contract.signing import decode_secret
    from ..ops.receiver import ReceiverServer, ReceiverState

    def show(received: Any) -> None:
        click.echo(f"{received.event:<28} {received.request_id}  retry={str(received.retry).lower()}")

    def refused(why: str) -> None:
        click.echo(f"answered 401: {why}")

    if signing_secret:
        try:
            decode_secret(signing_secret)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--signing-secret") from None
    server = ReceiverServer(
        host, port, ReceiverState(key=key, signing_secret=signing_secret, on_event=show, on_reject=refused)
    )
    click.echo(f"receiving on http://{host}:{server.server_address[1]}/ (any path); Ctrl-C stops", err=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
