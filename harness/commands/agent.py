"""`harness agent serve --voice`: the embedded restaurant agent answers the phone.

It listens on a Twilio Media Streams WebSocket (`ws://HOST:PORT/media`) and prints that URL
as its first line on stdout once it is ready; point a `kind: voice` target at it, or let the
target start it (`serve: embedded`). It stops on Ctrl-C or SIGTERM (or, with
`--until-stdin-closes`, when its parent goes away).
"""

from __future__ import annotations

from typing import List, Optional

import typer

agent_app = typer.Typer(help="The embedded reference agent (Sakura Restaurant).", no_args_is_help=True)


def register(app: typer.Typer) -> None:
    app.add_typer(agent_app, name="agent")


@agent_app.command("serve")
def serve(
    voice: bool = typer.Option(False, "--voice", help="Answer on a media-stream WebSocket (the only mode so far)."),
    host: str = typer.Option("127.0.0.1", "--host", metavar="HOST", help="Address to listen on."),
    port: int = typer.Option(8765, "--port", metavar="N", min=0, max=65535, help="Port to listen on (0: any free one)."),
    fault: List[str] = typer.Option([], "--fault", metavar="FAULT",
                                    help="A sim fault knob, e.g. slow_first_audio:3000 or dead_air (repeatable)."),
    seed: int = typer.Option(7, "--seed", metavar="N", help="Fixes the agent's random draws (faults, booking ids)."),
    stt: str = typer.Option("none", "--stt", metavar="none|pocketsphinx|openai",
                            help="How the agent transcribes a caller whose words the harness does not tell it."),
    stt_url: Optional[str] = typer.Option(None, "--stt-url", metavar="URL", help="--stt openai: the API root."),
    end_of_speech_ms: float = typer.Option(500, "--end-of-speech-ms", metavar="MS", min=20,
                                           help="Caller quiet this long ends the caller's line."),
    reprompt_ms: float = typer.Option(5000, "--reprompt-ms", metavar="MS", min=100,
                                      help="Caller silent this long: the agent speaks up."),
    tts_cache: Optional[str] = typer.Option(None, "--tts-cache", metavar="DIR", help="Keep synthesised lines here."),
    until_stdin_closes: bool = typer.Option(False, "--until-stdin-closes", hidden=True),
) -> None:
    """Serve the embedded agent to voice calls (Twilio Media Streams over WebSocket)."""
    from ..errors import ConfigError, HarnessError
    from . import fail

    try:
        if not voice:
            raise ConfigError("agent serve needs --voice (the text agent runs in-process as `kind: sim`)")
        _serve(host, port, fault, seed, stt, stt_url, end_of_speech_ms, reprompt_ms, tts_cache, until_stdin_closes)
    except HarnessError as e:
        raise fail(e)
    except ImportError as e:
        raise fail(ConfigError(f"the voice agent needs the voice extra (pip install 'harness[voice]'): {e}"))
    except KeyboardInterrupt:
        pass


def _serve(host: str, port: int, faults: list[str], seed: int, stt: str, stt_url: str | None,
           end_of_speech_ms: float, reprompt_ms: float, tts_cache: str | None, until_stdin_closes: bool) -> None:
    import asyncio
    import signal
    import sys

    from pydantic import ValidationError

    from ..errors import ConfigError
    from ..targets.voice.config import SttConfig, TtsConfig
    from ..voiceagent import VoiceAgentServer, serve_forever

    try:
        stt_config = SttConfig(kind=stt, base_url=stt_url)  # type: ignore[arg-type]
    except ValidationError as e:
        raise ConfigError(f"--stt {stt}: {e.errors()[0]['msg']}") from None

    async def main() -> None:
        loop = asyncio.get_running_loop()
        done = loop.create_future()

        def stop() -> None:
            if not done.done():
                done.set_result(None)

        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop)
        if until_stdin_closes:
            loop.add_reader(sys.stdin.fileno(), lambda: sys.stdin.buffer.read1(4096) or stop())
        server = VoiceAgentServer(faults=faults, seed=seed, end_of_speech_ms=end_of_speech_ms,
                                  reprompt_ms=reprompt_ms, stt=stt_config, tts=TtsConfig(cache_dir=tts_cache))
        await serve_forever(server, host, port, announce=lambda url: print(url, flush=True), until=done)

    asyncio.run(main())
