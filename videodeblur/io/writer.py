"""Streaming video output: encode restored planes, copy every other stream untouched.

The encoded video stream takes over the input's time base, size, pixel format, colour
tags, sample aspect ratio and display matrix; every frame keeps the pts it was decoded
with, so variable frame rate timing survives exactly (up to the container's own
timestamp resolution: Matroska stores milliseconds). Audio, subtitle, data and
cover-art streams are added from their input streams as templates and their packets
are muxed as they are, never re-encoded. All writes go through ``container.mux``
(``av_interleaved_write_frame``), so copied packets may arrive before the encoder has
released the (delayed) video packets of the same time.

Findings for PyAV 18.1 this module relies on:

* A display matrix *can* be written: ``VideoStream.set_display_matrix`` (raw 9 int32)
  and ``set_display_rotation`` put ``AV_PKT_DATA_DISPLAYMATRIX`` in the stream's coded
  side data just before the header is written. MP4/MOV (track header matrix) and
  Matroska keep it; PyAV reads it back on decoded frames and the ffmpeg CLI reports
  it ("Display Matrix: rotation of 90.00 degrees"), see tests/test_writer.py. The legacy
  ``rotate`` stream metadata tag is not used: the bundled FFmpeg neither exports it
  when reading a rotated MP4 nor needs it when writing one.
* ``add_stream_from_template`` checks ``avformat_query_codec`` and raises
  ``ValueError`` when the container cannot hold the codec, before anything is
  written; it does not copy stream metadata or disposition (done here).
* ``OutputContainer.mux`` rescales each packet from its own ``time_base`` to the
  output stream's (which the muxer may have changed when writing the header, e.g.
  Matroska forces 1/1000 and MP4 raises timescales below 10000).
* Timestamps: MP4/MOV keep every pts exactly (negative dts from B-frames and the
  -1024-sample AAC priming of copied audio go into edit lists). Matroska stores
  milliseconds and, by libavformat's default ``avoid_negative_ts`` (the ffmpeg CLI's
  behaviour too), shifts *all* streams by one offset when a copied stream starts
  below zero (about 21 ms for AAC from an MP4): intervals and A/V sync stay exact,
  absolute times move.
* The MP4 muxer writes its own empty gap samples between ``mov_text`` subtitles, so
  a copied MP4 subtitle track gains zero-length empty samples (``ffmpeg -c copy``
  does the same); the text samples are byte-identical.
* A QuickTime ``tmcd`` timecode track copied with ``add_stream_from_template`` fails
  when the file is finished ("avg_frame_rate not set for tmcd track": PyAV cannot set
  a data stream's frame rate); the writer puts the timecode on the video stream
  instead and the MOV/MP4 muxer writes the identical track. Matroska holds no data
  stream; such inputs are refused before anything is written.
* Interlacing: PyAV 18 cannot flag a frame interlaced (``interlaced_frame`` is read
  only); the stream's field order is set on the encoder and libx264 codes fields
  (``+ildct+ilme``, ``bff=1`` for bottom-first), so decoders flag the frames again.
* Bundled libx264 is built with high bit depth: ``yuv420p10le``, ``yuv422p10le`` and
  ``yuv444p10le`` encode (High 10 / High 4:2:2 / High 4:4:4 profiles).
"""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import os

import av
import av.error

from videodeblur import registry
from videodeblur.errors import InvalidParameterError, OutputError
from videodeblur.io.planes import chroma_subsampling, frame_from_item
from videodeblur.io.audio import AudioReencoder
from videodeblur.io.formats import choose_pix_fmt, encoder_for
from videodeblur.io.probe import VideoInfo, av_message
from videodeblur.io.reader import FrameItem
from videodeblur.limits import NO_SPACE_ERRNOS

__all__ = ["VideoWriter", "choose_pix_fmt"]

#: The encoder's threading: FFmpeg's default, frame and slice threads where the encoder has them
#: (see ``VideoWriter._add_video_stream``).
ENCODER_THREAD_TYPE = "AUTO"

# Stream metadata written by muxers themselves; copying the input's values would leave
# stale statistics (mkvmerge's _STATISTICS_*, Matroska DURATION) in the output.
_STALE_METADATA = {"duration", "number_of_frames", "number_of_bytes", "encoder", "_statistics_tags",
                   "_statistics_writing_app", "_statistics_writing_date_utc", "bps"}



def _is_timecode_track(src) -> bool:
    """A QuickTime/MP4 'tmcd' timecode track: a data stream whose metadata has its timecode."""
    return src.type == "data" and bool(src.metadata.get("timecode"))


class VideoWriter:
    """Encode :class:`FrameItem` planes and copy packets into a new media file.

    Parameters
    ----------
    path : str or os.PathLike
        Output file; its extension picks the container (.mp4, .mkv, .mov ...).
    info : VideoInfo
        The input's video description (size, time base, colour tags, rotation).
    copy_streams : list of av.stream.Stream
        Input streams whose packets will be copied (``VideoReader.copy_streams``).
    codec : str
        Video encoder: ``libx264``, ``libx265``, ``prores_ks`` (.mov), ``ffv1`` (.mkv) ...
    crf : int or None
        Constant rate factor, for encoders that have one (x264/x265); ignored by others.
    preset : str or None
        Encoder speed preset, for encoders that have one; ignored by others.
    pix_fmt : str or None
        Encoded pixel format; by default the input's, or, if the encoder cannot take
        it, the smallest supported format that holds it losslessly (see
        :func:`choose_pix_fmt`).
    codec_options : dict or None
        Further encoder options (strings), e.g. ``{"tune": "film"}``.
    metadata : dict or None
        Container-level metadata (title ...) to write; extension beyond the base
        interface, pass ``reader.container.metadata`` to keep the input's.
    video_template : av.stream.VideoStream or None
        Copy the video instead of encoding it: a stream already encoded (a segment's, see
        :mod:`videodeblur.pipeline.segments`) whose packets :meth:`copy_video_packet` muxes as
        they are; its codec parameters (extradata, colour tags, field order) are taken over,
        the time base, frame rate and rotation come from ``info`` as for an encoded stream.
        ``codec``, ``crf``, ``preset``, ``pix_fmt`` and ``codec_options`` are then ignored.

    Raises
    ------
    OutputError
        Unknown container extension; the container cannot hold the video codec or a
        copy stream; the encoder rejects the pixel format or frame size; the file
        cannot be created. Raised before any frame is written.
    InvalidParameterError
        Unknown encoder, bad ``crf``.
    """

    def __init__(
        self,
        path,
        info: VideoInfo,
        copy_streams,
        *,
        codec: str = "libx264",
        crf: int | None = 18,
        preset: str | None = "medium",
        pix_fmt: str | None = None,
        codec_options: dict | None = None,
        metadata: dict | None = None,
        video_template=None,
        profile: str | None = None,
        audio: str = "copy",
    ):
        self.path = Path(path)
        self.info = info
        self.container = None
        self._closed = False
        self._frames = 0
        self._encoded = 0
        #: Packets of the other streams written (copied, or re-encoded audio packets read).
        self.packets_copied = 0
        self._encoding = video_template is None
        if audio not in registry.AUDIO_MODES:
            raise InvalidParameterError(f"audio must be one of {', '.join(registry.AUDIO_MODES)}, got {audio!r}")
        self.audio = audio
        # Re-encoded audio streams, by input stream index.
        self._audio_codecs: dict[int, AudioReencoder] = {}
        if audio == "none":
            copy_streams = [src for src in copy_streams if src.type != "audio"]
        self.profile = None
        if self._encoding:
            enc = encoder_for(codec)
            self.codec = enc.name
            pix_fmt, self.profile = self._encoding_format(enc, pix_fmt, profile)
        else:
            enc = None
            self.codec = video_template.codec_context.name
            pix_fmt = video_template.codec_context.pix_fmt
        self.pix_fmt = pix_fmt

        # A file this constructor creates and then fails to set up is removed again;
        # one that was already there is left to the caller (atomic_output).
        self._created = not self.path.exists()
        self._open_container()
        try:
            self.stream = (self._add_video_stream(enc, pix_fmt, crf, preset, codec_options) if self._encoding
                           else self._add_copied_video_stream(video_template))
            self._add_copy_streams(copy_streams, metadata)
        except BaseException:
            self.abort()
            if self._created:
                try:
                    self.path.unlink()
                except OSError:
                    pass
            raise

    def _open_container(self) -> None:
        try:
            self.container = av.open(str(self.path), "w")
        except ValueError as exc:
            raise OutputError(
                f"output '{self.path}': unknown container for extension '{self.path.suffix}' ({exc}); "
                "use .mp4, .mkv or .mov"
            ) from None
        except (av.error.FFmpegError, OSError) as exc:
            raise self._wrap(exc, "cannot create the file") from None
        self._ext = self.path.suffix or self.container.format.name

    def _add_copy_streams(self, copy_streams, metadata) -> None:
        """The other streams and the metadata; then the header, so that every incompatibility
        (size, pix_fmt, codec tags) surfaces before any frame is processed."""
        # Input stream index -> output stream; None: the muxer writes that stream itself
        # (a timecode track), its packets are not copied.
        self._stream_map = {}
        for src in copy_streams:
            self._stream_map[src.index] = self._add_copy_stream(src)
        if metadata:
            self.container.metadata.update({str(k): str(v) for k, v in metadata.items()})
        try:
            self.container.start_encoding()
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise self._wrap(exc, f"cannot start {self.codec} {self.pix_fmt} {self.info.width}x{self.info.height} "
                                  f"in the {self._ext} container") from None

    # -- setup ------------------------------------------------------------------

    def _encoding_format(self, enc: av.Codec, pix_fmt: str | None, profile: str | None) -> tuple[str, str | None]:
        """The pixel format and the profile to encode with (both checked against the encoder)."""
        entry = registry.codec(enc.name)
        for key, value in (entry.environment if entry is not None else {}).items():
            os.environ.setdefault(key, value)  # read by the encoder library when it opens
        if profile and pix_fmt is None and entry is not None and entry.profiles:
            pix_fmt = entry.profile_pix_fmt(profile)
        if pix_fmt is None:
            try:
                pix_fmt = choose_pix_fmt(enc.name, self.info.pix_fmt)
            except OutputError as exc:
                raise OutputError(f"output '{self.path}': {exc}; pass an explicit pix_fmt") from None
        self._check_pix_fmt(enc, pix_fmt)
        if entry is not None and entry.profiles:
            chosen = profile or next((name for name, fmt in entry.profiles if fmt == pix_fmt), None)
            if chosen is None or entry.profile_pix_fmt(chosen) != pix_fmt:
                raise OutputError(f"output '{self.path}': no {enc.name} profile encodes {pix_fmt} "
                                  f"(profiles: {', '.join(f'{n} {f}' for n, f in entry.profiles)})")
            return pix_fmt, chosen
        if profile:
            raise InvalidParameterError(f"{enc.name} has no profiles, got profile {profile!r}")
        return pix_fmt, None

    def _check_pix_fmt(self, enc: av.Codec, pix_fmt: str) -> None:
        try:
            fmt = av.VideoFormat(pix_fmt)
        except (ValueError, av.error.FFmpegError):
            raise InvalidParameterError(f"unknown pixel format '{pix_fmt}'") from None
        supported = [f.name for f in (enc.video_formats or ())]
        if supported and fmt.name not in supported:
            hint = ""
            if enc.name == "libx264" and "10" in pix_fmt:
                hint = " (this libx264 build has no such high bit depth mode)"
            raise OutputError(
                f"output '{self.path}': encoder {enc.name} cannot encode {pix_fmt}{hint}; "
                f"supported: {', '.join(supported)}"
            )
        sx, sy = chroma_subsampling(fmt.name)
        w, h = self.info.width, self.info.height
        entry = registry.codec(enc.name)
        if entry is not None and entry.even_chroma_size and (w % sx or h % sy):
            raise OutputError(
                f"output '{self.path}': {enc.name} cannot encode a {w}x{h} frame in {pix_fmt} "
                f"(its chroma subsampling needs sizes divisible by {sx}x{sy}); "
                "use ffv1 in .mkv or a 4:4:4 pixel format"
            )

    def _add_video_stream(self, enc: av.Codec, pix_fmt, crf, preset, codec_options):
        info = self.info
        options = {str(k): str(v) for k, v in (codec_options or {}).items()}
        # The nominal rate only feeds rate control and the container's average-rate
        # field; timing comes from the frame pts.
        rate = info.average_rate or Fraction(25)
        try:
            stream = self.container.add_stream(enc.name, rate=rate)
        except ValueError:
            raise OutputError(
                f"output '{self.path}': the {self._ext} container ({self.container.format.name}) cannot hold "
                f"{enc.name} video; {self._suggest()}"
            ) from None
        private = {o.name for o in stream.codec_context.supported_options.private}
        if crf is not None:
            if not isinstance(crf, int) or isinstance(crf, bool) or crf < 0:
                raise InvalidParameterError(f"crf must be a non-negative integer, got {crf!r}")
            if "crf" in private:
                options.setdefault("crf", str(crf))
        entry = registry.codec(enc.name)
        if entry is not None and entry.presets and preset not in entry.presets:
            preset = entry.default_preset  # the config's default ("medium") is not one of its presets
        if preset is not None and "preset" in private:
            options.setdefault("preset", str(preset))
        if self.profile is not None:
            options.setdefault("profile", self.profile)
        if entry is not None and entry.options is not None:
            for key, value in entry.options(info).items():
                options.setdefault(key, value)
        stream.codec_context.options.update(options)
        # FFmpeg's own default threading (frame and slice): PyAV opens encoders with slice
        # threading only, which makes libx264 use its sliced threads, its "low-latency but
        # lower-efficiency" mode; with frame threads a transcode through this writer runs as
        # fast as the ffmpeg program's and the file is slightly smaller (docs/performance.md).
        # Encoders that thread internally (x265) ignore this.
        stream.codec_context.thread_type = ENCODER_THREAD_TYPE
        stream.width = info.width
        stream.height = info.height
        stream.pix_fmt = pix_fmt
        # The input's time base on both the encoder and the stream: frame pts pass
        # through unchanged (the encoder never re-times them) and the muxer only
        # rescales if the container forces its own time base (Matroska: 1/1000).
        stream.codec_context.time_base = info.time_base
        stream.time_base = info.time_base
        for key, value in info.colour_tags().items():
            setattr(stream.codec_context, key, value)
        if info.sample_aspect_ratio:
            stream.codec_context.sample_aspect_ratio = info.sample_aspect_ratio
        if info.field_order is not None:
            # The container's field order tag (MOV 'fiel', Matroska FieldOrder).
            stream.codec_context.field_order = info.field_order
        self._set_rotation(stream)
        if info.disposition:
            stream.disposition = info.disposition  # the "default" flag players pick tracks by
        return stream

    def _add_copied_video_stream(self, template):
        try:
            stream = self.container.add_stream_from_template(template)
        except (ValueError, av.error.FFmpegError):
            raise OutputError(
                f"output '{self.path}': the {self._ext} container ({self.container.format.name}) cannot hold "
                f"{self.codec} video; {self._suggest()}"
            ) from None
        stream.time_base = self.info.time_base
        self._set_rotation(stream)
        return stream

    def _set_rotation(self, stream) -> None:
        if self.info.display_matrix is not None:
            stream.set_display_matrix(self.info.display_matrix)
        elif self.info.rotation_deg:
            stream.set_display_rotation(self.info.rotation_deg)

    def _suggest(self) -> str:
        if self.container.format.name == "webm":
            return 'use .mkv (Matroska holds almost any stream), or re-encode the audio with output.audio = "opus"'
        if "matroska" in self.container.format.name:
            # What Matroska refuses (mov_text, tmcd ...) comes from the MP4 family.
            return "use .mov or .mp4 like the input"
        if self.container.format.name.split(",")[0] == "mov":
            return "use .mkv (Matroska holds almost any stream)"
        return "use .mkv (Matroska holds almost any stream) or .mov"

    def _refuse_copy_stream(self, src, name: str):
        return OutputError(
            f"output '{self.path}': the {self._ext} container ({self.container.format.name}) cannot hold "
            f"{src.type} stream #{src.index} ({name}); {self._suggest()}"
        )

    def _add_copy_stream(self, src):
        fmt = self.container.format.name
        if _is_timecode_track(src):
            # A QuickTime 'tmcd' track. Copied from a template it lacks the frame rate the
            # MOV muxer needs ("avg_frame_rate not set for tmcd track" when the file is
            # finished); given the timecode, the muxer writes the same track itself (the
            # one sample is the frame number of the start timecode). Matroska holds no
            # data streams: refused here rather than by the header writer's bare EINVAL.
            if fmt.split(",")[0] in ("mov", "mp4"):
                self.stream.metadata["timecode"] = src.metadata["timecode"]
                return None
            raise self._refuse_copy_stream(src, "tmcd timecode")
        if src.type == "data" and "matroska" in fmt:
            raise self._refuse_copy_stream(src, "data")
        encoder = registry.AUDIO_MODES.get(self.audio)
        if src.type == "audio" and encoder is not None:
            return self._add_reencoded_audio(src, encoder)
        if src.type == "audio" and fmt == "mxf" and not src.codec_context.name.startswith("pcm"):
            raise OutputError(f"output '{self.path}': the .mxf container holds only PCM audio, not audio stream "
                              f"#{src.index} ({src.codec_context.name}); use .mov, or leave the audio out with "
                              "output.audio = \"none\"")
        try:
            out = self.container.add_stream_from_template(src)
        except (ValueError, av.error.FFmpegError):
            name = getattr(getattr(src, "codec_context", None), "name", None) or src.type
            raise self._refuse_copy_stream(src, name) from None
        # mkvmerge suffixes its statistics with a language ("DURATION-eng").
        meta = {k: v for k, v in src.metadata.items() if k.lower().split("-")[0] not in _STALE_METADATA}
        if "name" in meta and "title" not in meta:
            # The MP4/MOV demuxer reads a track title back as "name", but every muxer
            # (MP4/MOV included) writes only "title": renamed, or the title is lost.
            meta["title"] = meta.pop("name")
        if meta:
            out.metadata.update(meta)
        # The template copy keeps codec parameters only: default/forced/cover-art flags
        # are what players use to pick tracks.
        out.disposition = int(src.disposition)
        return out

    def _add_reencoded_audio(self, src, encoder: str):
        """An output stream that re-encodes ``src`` (``audio = "aac"`` or ``"opus"``)."""
        try:
            reencoder = AudioReencoder(self.container, src, encoder)
        except (ValueError, av.error.FFmpegError) as exc:
            raise OutputError(f"output '{self.path}': cannot re-encode audio stream #{src.index} "
                              f"({src.codec_context.name}) as {encoder}: {av_message(exc)}") from None
        out = reencoder.stream
        if src.metadata:
            out.metadata.update({k: v for k, v in src.metadata.items()
                                 if k.lower().split("-")[0] not in _STALE_METADATA})
        out.disposition = int(src.disposition)
        self._audio_codecs[src.index] = reencoder
        return out

    # -- writing ----------------------------------------------------------------

    def _wrap(self, exc: BaseException, what: str) -> OutputError:
        if getattr(exc, "errno", None) in NO_SPACE_ERRNOS:
            return OutputError(f"output '{self.path}': no space left writing ({av_message(exc)})")
        return OutputError(f"output '{self.path}': {what}: {av_message(exc)}")

    def _make_frame(self, item: FrameItem) -> av.VideoFrame:
        return frame_from_item(item, self.info)

    def write_frame(self, item: FrameItem) -> None:
        """Encode one frame and mux the packets the encoder releases.

        Parameters
        ----------
        item : FrameItem
            Planes (shape and dtype as decoded), pts and time base. A pix_fmt other
            than the output's is converted by the encoder's scaler.

        Raises
        ------
        OutputError
            Encoding or writing failed (disk full, non-increasing pts ...).
        InvalidParameterError
            Plane count, shape or dtype do not match ``item.pix_fmt``.
        """
        if self._closed:
            raise OutputError(f"output '{self.path}': writer is closed")
        if not self._encoding:
            raise InvalidParameterError("this writer copies its video (video_template): it encodes no frames")
        frame = self._make_frame(item)
        try:
            packets = self.stream.encode(frame)
            self.container.mux(packets)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise self._wrap(exc, f"cannot encode frame {item.index} (pts {item.pts})") from None
        self._frames += 1
        self._encoded += len(packets)

    def mux_packet(self, packet) -> None:
        """Copy one packet of a copy stream into its output stream.

        Parameters
        ----------
        packet : av.Packet
            A packet demuxed from one of the ``copy_streams`` given at construction;
            pts/dts are kept (rescaled to the output stream's time base if the muxer
            chose another one).

        Raises
        ------
        OutputError
            Writing failed.
        InvalidParameterError
            The packet does not belong to a copy stream.
        """
        if self._closed:
            raise OutputError(f"output '{self.path}': writer is closed")
        if packet.size == 0:
            return
        src = packet.stream
        index = src.index if src is not None else packet.stream_index
        if index not in self._stream_map:
            if self.audio == "none" and src is not None and src.type == "audio":
                return  # left out as asked
            raise InvalidParameterError(f"packet of stream #{index} is not one of the copy streams")
        out = self._stream_map.get(index)
        if out is None:
            return  # a stream the muxer writes itself (timecode track)
        self.packets_copied += 1
        if index in self._audio_codecs:
            try:
                self._audio_codecs[index].write(packet)
            except (av.error.FFmpegError, OSError, ValueError) as exc:
                raise self._wrap(exc, f"cannot re-encode a packet of audio stream #{index}") from None
            return
        if not packet.time_base:
            packet.time_base = out.time_base
        # Re-pointing the packet at the output stream; mux() then rescales pts, dts and
        # duration from the packet's (input) time base to the output stream's.
        packet.stream = out
        try:
            self.container.mux(packet)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise self._wrap(exc, f"cannot write a packet of stream #{out.index}") from None

    def copy_video_packet(self, packet) -> None:
        """Mux one packet of the ``video_template`` stream's kind as it is (pts and dts kept,
        rescaled from the packet's time base to the output stream's).

        Raises
        ------
        OutputError
            Writing failed (disk full, timestamps out of order ...).
        """
        if self._closed:
            raise OutputError(f"output '{self.path}': writer is closed")
        if packet.size == 0:
            return
        packet.stream = self.stream
        try:
            self.container.mux(packet)
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            raise self._wrap(exc, f"cannot write video packet (pts {packet.pts})") from None
        self._frames += 1

    @property
    def frames_encoded(self) -> int:
        """Frames the encoder has finished and the file holds (its video packets): behind
        :attr:`frames_written` by what the encoder still holds (look-ahead, frame threads)."""
        return self._encoded

    @property
    def frames_written(self) -> int:
        """Number of frames passed to :meth:`write_frame` (or packets to :meth:`copy_video_packet`)."""
        return self._frames

    def close(self) -> None:
        """Flush the encoder, write the trailer and close the file (idempotent).

        Raises
        ------
        OutputError
            Flushing or finishing the file failed.
        """
        if self._closed:
            return
        self._closed = True
        container, self.container = self.container, None
        if container is None:
            return
        try:
            if self._encoding:
                packets = self.stream.encode(None)
                container.mux(packets)
                self._encoded += len(packets)
            for reencoder in self._audio_codecs.values():
                reencoder.flush()
            container.close()
        except (av.error.FFmpegError, OSError, ValueError) as exc:
            try:
                container.close()
            except Exception:
                pass
            raise self._wrap(exc, "cannot finish the file") from None

    def abort(self) -> None:
        """Close the file without flushing, ignoring errors (on an error path)."""
        self._closed = True
        container, self.container = self.container, None
        if container is not None:
            try:
                container.close()
            except Exception:
                # Already failing: the caller's exception matters, not this one.
                pass

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __repr__(self) -> str:
        return f"VideoWriter({str(self.path)!r}, codec={self.codec!r}, pix_fmt={self.pix_fmt!r})"
