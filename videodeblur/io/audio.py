"""Audio re-encoded on request (``output.audio = "aac"`` or ``"opus"``), packet by packet.

Copying is the default and keeps every audio packet byte for byte; re-encoding is for a
container that cannot hold the source's audio codec (AAC into WebM). The decoder is opened from
the source stream's parameters, the encoder's output stream added to the output container.
"""

from __future__ import annotations

import av

#: Sample rates an encoder needs other than the source's (Opus encodes 48 kHz).
ENCODER_RATES = {"libopus": 48000}


class AudioReencoder:
    """Decodes one source audio stream's packets and encodes them into an output stream.

    Parameters
    ----------
    container : av.container.OutputContainer
    source : av.audio.stream.AudioStream
        The input stream.
    encoder : str
        FFmpeg's encoder name (``"aac"``, ``"libopus"``).

    Raises
    ------
    ValueError or av.error.FFmpegError
        The decoder or encoder cannot be opened (the writer says which stream).
    """

    def __init__(self, container, source, encoder: str):
        context = source.codec_context
        self.container = container
        self.decoder = av.CodecContext.create(context.name, "r")
        self.decoder.extradata = context.extradata
        self.decoder.sample_rate, self.decoder.layout = context.sample_rate, context.layout
        rate = ENCODER_RATES.get(encoder, context.sample_rate)
        self.stream = container.add_stream(encoder, rate=rate, layout=context.layout.name)

    def write(self, packet) -> None:
        """Decode one source packet and mux what the encoder releases."""
        for frame in self.decoder.decode(packet):
            frame.pts = None  # the encoder numbers its samples itself, from the start
            self.container.mux(self.stream.encode(frame))

    def flush(self) -> None:
        """The decoder's and the encoder's last samples (at the end of the file)."""
        for frame in self.decoder.decode(None):
            frame.pts = None
            self.container.mux(self.stream.encode(frame))
        self.container.mux(self.stream.encode(None))
