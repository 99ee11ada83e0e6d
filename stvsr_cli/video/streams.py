"""Copying the input's audio and subtitle streams into the output: as they are where the
container holds them, converted (text subtitles, audio) where it does not, dropped with a
warning otherwise; and their tags."""

from __future__ import annotations

import io
from fractions import Fraction

from .common import DAMAGE, TEXT_SUBTITLE_TARGETS, ffmpeg_reason


class CopyRoute:
    """How one input audio/subtitle stream reaches the output: packets remuxed as they are,
    or (text subtitles the container cannot hold, e.g. SRT into MP4) decoded and re-encoded
    as a text format it can hold."""

    def __init__(self, out, decoder=None):
        self.out = out
        self.decoder = decoder  # a decoder for the input stream when converting

    @classmethod
    def create(cls, container, src, warnings: list[str]) -> CopyRoute | None:
        import av

        fmt = container.format.name
        name = codec_name(src)
        what = f"{src.type} stream #{src.index} ({name})"
        if muxer_accepts(fmt, template=src):
            try:
                out = container.add_stream_from_template(src)
            except (av.error.FFmpegError, ValueError) as e:
                warnings.append(f"dropped {what}: the output container cannot hold it ({ffmpeg_reason(e)})")
                return None
            copy_stream_tags(src, out)
            return cls(out)
        decoder = text_subtitle_decoder(src)
        if decoder is not None:
            header = decoder.subtitle_header
            for target in TEXT_SUBTITLE_TARGETS:
                if muxer_accepts(fmt, codec=target, subtitle_header=header):
                    out = container.add_stream(target)
                    out.codec_context.subtitle_header = header
                    out.codec_context.time_base = src.time_base
                    out.time_base = src.time_base
                    copy_stream_tags(src, out)
                    warnings.append(f"converted {what} to {target}: the {fmt} container cannot hold {name}")
                    return cls(out, decoder=decoder)
        transcoded = AudioTranscode.create(container, src)
        if transcoded is not None:
            target = transcoded.out.codec_context.name
            warnings.append(f"converted {what} to {target}: the {fmt} container cannot hold {name}")
            return transcoded
        warnings.append(f"dropped {what}: the {fmt} container cannot hold it")
        return None

    def packets(self, packet) -> list:
        if self.decoder is None:
            packet.stream = self.out
            return [packet]
        import av

        try:
            subtitle = self.decoder.decode2(packet)
            if subtitle is None or len(subtitle) == 0:
                return []
            new = self.out.codec_context.encode_subtitle(subtitle)
        except (av.error.FFmpegError, *DAMAGE):
            return []  # one damaged cue is not worth the run
        new.stream = self.out
        new.pts, new.dts = packet.pts, packet.dts
        new.duration = packet.duration or subtitle.end_display_time
        new.time_base = packet.time_base
        return [new]

    def flush(self) -> list:
        """The packets still held inside (a transcoder's delay) once the input has ended."""
        return []


# audio encoders to convert to, in order, when the output cannot hold the input's audio codec
# (e.g. AAC into WebM becomes Opus)
AUDIO_TARGETS = ("libopus", "aac", "libvorbis", "flac")


class AudioTranscode(CopyRoute):
    """Audio the container cannot hold as it is: decoded and encoded again (same rate and
    channel layout), its samples keeping their times."""

    @classmethod
    def create(cls, container, src) -> AudioTranscode | None:
        import av

        if src.type != "audio" or src.codec_context is None:
            return None
        fmt = container.format.name
        for target in AUDIO_TARGETS:
            if target not in av.codecs_available or not muxer_accepts(fmt, codec=target, audio_like=src):
                continue
            try:
                decoder = av.CodecContext.create(src.codec_context.name, "r")
                if src.codec_context.extradata:
                    decoder.extradata = src.codec_context.extradata
                out = container.add_stream(target, rate=audio_rate(target, src))
                out.layout = src.layout.name
            except (av.error.FFmpegError, *DAMAGE):
                continue
            copy_stream_tags(src, out)
            return cls(out, decoder=decoder)
        return None

    def packets(self, packet) -> list:
        import av

        try:
            frames = self.decoder.decode(packet)
        except (av.error.FFmpegError, *DAMAGE):
            return []  # a damaged audio packet: a moment of silence, not a failed run
        return self._encode(frames)

    def flush(self) -> list:
        import av

        try:
            frames = self.decoder.decode(None)
        except (av.error.FFmpegError, *DAMAGE):
            frames = []
        return self._encode(frames) + list(self.out.encode(None))

    def _encode(self, frames) -> list:
        packets = []
        for frame in frames:
            packets.extend(self.out.encode(frame))
        return packets


def audio_rate(codec: str, src) -> int:
    """The output sample rate: the input's, where the encoder takes it (Opus: 48 kHz only)."""
    import av

    rates = av.codec.Codec(codec, "w").audio_rates
    if not rates or src.rate in rates:
        return src.rate
    return min(rates, key=lambda r: (r < src.rate, abs(r - src.rate)))


def codec_name(stream) -> str:
    """The codec's canonical name (``subrip``, not the decoder's ``srt``)."""
    cc = stream.codec_context
    if cc is None:
        return "unknown codec"
    return getattr(cc.codec, "canonical_name", None) or cc.name


def text_subtitle_decoder(src):
    """An opened decoder of its own for a text subtitle stream (its ASS header is what a text
    encoder needs), or None for anything that cannot be converted (audio, bitmap subtitles)."""
    import av

    if src.type != "subtitle" or src.codec_context is None:
        return None
    try:
        if not av.codec.Codec(src.codec_context.name, "r").text_sub:
            return None
        decoder = av.CodecContext.create(src.codec_context.name, "r")
        if src.codec_context.extradata:
            decoder.extradata = src.codec_context.extradata
        decoder.open(strict=False)
    except (av.error.FFmpegError, *DAMAGE):
        return None
    return decoder if decoder.subtitle_header else None


def muxer_accepts(
    format_name: str, template=None, codec: str | None = None, subtitle_header=None, audio_like=None
) -> bool:
    """Whether the ``format_name`` muxer accepts a stream (a copy of ``template``, or a new
    ``codec`` stream: a text subtitle one with ``subtitle_header``, or an audio one with the
    rate and layout of the stream ``audio_like``) up to and including writing its header:
    some muxers refuse a stream only there. Tried on a throwaway in-memory file."""
    import av

    try:
        with av.open(io.BytesIO(), "w", format=format_name) as trial:
            if template is not None:
                trial.add_stream_from_template(template)
            elif audio_like is not None:
                stream = trial.add_stream(codec, rate=audio_rate(codec, audio_like))
                stream.layout = audio_like.layout.name
            else:
                stream = trial.add_stream(codec)
                stream.codec_context.subtitle_header = subtitle_header
                stream.codec_context.time_base = Fraction(1, 1000)
            trial.start_encoding()
        return True
    except (av.error.FFmpegError, *DAMAGE, NotImplementedError, TypeError, AttributeError):
        return False


CONTAINER_KEYS_NOT_COPIED = {"major_brand", "minor_version", "compatible_brands", "encoder"}
STREAM_KEYS_NOT_COPIED = {"encoder", "handler_name", "vendor_id", "duration", "DURATION"}


def copy_stream_tags(src, dst) -> None:
    """Language, title and the other descriptive tags, plus disposition (default, forced...)."""
    dst.metadata.update({k: v for k, v in src.metadata.items() if k not in STREAM_KEYS_NOT_COPIED})
    try:
        dst.disposition = src.disposition
    except (AttributeError, TypeError, ValueError):
        pass
