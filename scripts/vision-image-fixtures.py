#!/usr/bin/python3
"""Regenerate test/fixtures/vision/images/decode/ (see PROVENANCE.md there): small PNG / JPEG /
WebP files of every kind src/vision/image reads or refuses, and what llama.cpp makes of them.

  /usr/bin/python3 scripts/vision-image-fixtures.py [--dump /tmp/v2/mtmd_image_dump]

Needs Debian's python3-pil (Pillow), imagemagick (convert) and webp (cwebp), and mtmd_image_dump
built from scripts/mtmd_image_dump.cpp against the llama.cpp source (LLAMA_SRC, default /tmp/llama/src):

  g++ -O1 -std=c++17 -I$LLAMA_SRC/tools/mtmd -I$LLAMA_SRC/vendor -I$LLAMA_SRC/ggml/include \
      -I$LLAMA_SRC/include scripts/mtmd_image_dump.cpp -o mtmd_image_dump -L$LLAMA_BUILD/bin -lggml-base

Writes expected.json: for each image the RGB that llama.cpp's stb_image decodes (sha256, and for
JPEGs the bytes, gzip'd, since our decoder is another one); for resize cases the padded RGB that
mtmd's smart resize makes (sha256 + size); Pillow's Image.resize(BICUBIC) results (sha256) as a
second, independent reference for the bicubic step; and smart-size targets for many sizes.
"""
import argparse
import base64
import gzip
import hashlib
import json
import os
import struct
import subprocess
import tempfile
import zlib

from PIL import Image

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT = os.path.join(ROOT, "test", "fixtures", "vision", "images", "decode")


# no tIME / date tEXt chunks, so that a rerun writes the same bytes
NODATE = ["-define", "png:exclude-chunks=date,time"]


def pattern(w, h):
    """make_png.py's pattern (gradients, checkerboard, xor noise), as a Pillow RGB image."""
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):
        for x in range(w):
            r = round(255 * x / max(w - 1, 1))
            g = round(255 * y / max(h - 1, 1))
            b = (224 if ((x // 8) + (y // 8)) % 2 else 32) ^ ((x * y) & 31)
            px[x, y] = (r, g, b)
    return img


def photo(w, h):
    """Smooth colour fields with soft and hard edges: closer to a photo than the pattern, for JPEG."""
    img = Image.new("RGB", (w, h))
    px = img.load()
    for y in range(h):
        for x in range(w):
            r = int(128 + 100 * ((x / w) - 0.5) * 2 * (1 if y < h // 2 else -1))
            g = int(60 + 150 * (y / h))
            b = 200 if (x - w / 3) ** 2 + (y - h / 2) ** 2 < (h / 3) ** 2 else 40 + (x * 3) % 50
            px[x, y] = (max(0, min(255, r)), g, b)
    return img


def png_file(w, h, depth, colour, raw):
    """A PNG from filtered scanlines (stdlib only, as make_png.py writes them)."""
    def chunk(tag, data):
        return struct.pack(">I", len(data)) + tag + data + struct.pack(">I", zlib.crc32(tag + data) & 0xFFFFFFFF)
    ihdr = struct.pack(">IIBBBBB", w, h, depth, colour, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")


def sha(b):
    return hashlib.sha256(b).hexdigest()


def run(*args, stdin=None):
    return subprocess.run(args, check=True, capture_output=True, text=True, input=stdin).stdout


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--dump", default="/tmp/v2/mtmd_image_dump")
    a = ap.parse_args()
    os.makedirs(OUT, exist_ok=True)
    tmp = tempfile.mkdtemp()
    base = pattern(37, 29)  # odd sizes: partial Adam7 passes, partial bytes at 1/2/4 bits
    alpha = Image.linear_gradient("L").resize((37, 29))
    files = {}

    def save(name, img, **kw):
        img.save(os.path.join(OUT, name), **kw)
        files[name] = {}

    save("rgb8.png", base)
    rgba = base.copy()
    rgba.putalpha(alpha)
    save("rgba8.png", rgba)
    save("grey8.png", base.convert("L"))
    la = base.convert("L")
    la = Image.merge("LA", (la, alpha))
    save("greya8.png", la)
    save("grey1.png", base.convert("1"))
    save("palette8.png", base.convert("P", palette=Image.Palette.ADAPTIVE, colors=200))
    save("palette4.png", base.convert("P", palette=Image.Palette.ADAPTIVE, colors=12), bits=4)
    pt = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=3)
    save("palette2-trns.png", pt, bits=2, transparency=1)
    src = os.path.join(OUT, "rgb8.png")
    # imagemagick for what Pillow does not write: 2/4-bit grey, 16-bit, Adam7 interlacing
    for name, args in [
        ("grey16.png", ["-colorspace", "Gray", "-depth", "16", "PNG48:"]),
        ("rgb16.png", ["-depth", "16", "PNG48:"]),
        ("rgba16.png", ["-alpha", "set", "-channel", "A", "-evaluate", "set", "60%", "+channel", "-depth", "16", "PNG64:"]),
        ("rgb8-adam7.png", ["-interlace", "PNG", "PNG24:"]),
        ("rgba16-adam7.png", ["-alpha", "set", "-channel", "A", "-evaluate", "set", "60%", "+channel", "-depth", "16", "-interlace", "PNG", "PNG64:"]),
    ]:
        fmt = args[-1]
        if name.startswith("grey16"):
            run("convert", src, *args[:-1], "-define", f"png:bit-depth={args[2]}", "-define", "png:color-type=0", *NODATE, os.path.join(OUT, name))
        else:
            run("convert", src, *args[:-1], *NODATE, fmt + os.path.join(OUT, name))
        files[name] = {}
    # 2- and 4-bit grey (neither tool writes them): packed by hand, filter type 1 (Sub) on every row
    grey = base.convert("L")
    for depth in (2, 4):
        rows = b""
        for y in range(grey.height):
            v = [grey.getpixel((x, y)) >> (8 - depth) for x in range(grey.width)]
            v += [0] * (-len(v) % (8 // depth))
            packed = bytes(sum(v[i + k] << (8 - depth * (k + 1)) for k in range(8 // depth)) for i in range(0, len(v), 8 // depth))
            rows += b"\x01" + bytes((packed[i] - (packed[i - 1] if i else 0)) & 255 for i in range(len(packed)))
        name = f"grey{depth}.png"
        with open(os.path.join(OUT, name), "wb") as fh:
            fh.write(png_file(grey.width, grey.height, depth, 0, rows))
        files[name] = {}
    # 1-pixel-wide and 1-pixel-tall interlaced images: most Adam7 passes are empty
    run("convert", "-size", "1x9", "gradient:red-blue", "-interlace", "PNG", *NODATE, "PNG24:" + os.path.join(OUT, "thin1x9-adam7.png"))
    files["thin1x9-adam7.png"] = {}

    ph = photo(96, 64)
    save("photo-444.jpg", ph, quality=90, subsampling=0)
    save("photo-420.jpg", ph, quality=90, subsampling=2)
    save("photo-422-progressive.jpg", ph, quality=85, subsampling=1, progressive=True)
    save("photo-grey.jpg", ph.convert("L"), quality=90)
    save("pattern-420.jpg", pattern(61, 45), quality=95, subsampling=2)
    # libjpeg-turbo's cjpeg / jpegtran (Debian libjpeg-turbo-progs) for what Pillow does not
    # write: restart markers, 4:4:0 and 4:1:1, non-interleaved scans, 16-bit quantisation tables
    # (quality 2), RGB, optimised tables; ImageMagick for CMYK; odd sizes so that MCUs are partial
    ppm = os.path.join(tmp, "photo.ppm")
    photo(99, 67).save(ppm)
    scans = os.path.join(tmp, "scans.txt")
    with open(scans, "w") as fh:
        fh.write("0;\n1;\n2;\n")
    for name, args in [
        ("cjpeg-420-restart.jpg", ["-sample", "2x2", "-restart", "2B", "-quality", "80"]),
        ("cjpeg-440.jpg", ["-sample", "1x2", "-quality", "85"]),
        ("cjpeg-411.jpg", ["-sample", "4x1", "-quality", "85"]),
        ("cjpeg-420-progressive.jpg", ["-sample", "2x2", "-progressive", "-quality", "75"]),
        ("cjpeg-q2-16bit-tables.jpg", ["-quality", "2"]),
        ("cjpeg-rgb.jpg", ["-rgb", "-quality", "90"]),
        ("cjpeg-optimized-noninterleaved.jpg", ["-optimize", "-scans", scans, "-quality", "90"]),
    ]:
        run("cjpeg", *args, "-outfile", os.path.join(OUT, name), ppm)
        files[name] = {}
    run("jpegtran", "-progressive", "-restart", "1", "-outfile", os.path.join(OUT, "jpegtran-progressive-restart.jpg"), os.path.join(OUT, "photo-420.jpg"))
    files["jpegtran-progressive-restart.jpg"] = {}
    run("convert", ppm, "-colorspace", "CMYK", "-quality", "90", os.path.join(OUT, "magick-cmyk.jpg"))
    files["magick-cmyk.jpg"] = {}
    for w, h in [(1, 1), (1, 17), (17, 1)]:
        name = f"tiny-{w}x{h}-420.jpg"
        save(name, photo(w, h), quality=90, subsampling=2)
    # GIF (stb_image reads the first frame): Pillow's interlaced (its default) and plain files,
    # a transparent index, two frames, and a 20x15 frame at (3, 2) on a 37x29 screen whose
    # background index is 5 (stb_image paints uncovered pixels with that entry, red and blue swapped)
    pal = base.convert("P", palette=Image.Palette.ADAPTIVE, colors=64)
    save("pattern-interlaced.gif", pal)
    save("pattern.gif", pal, interlace=False)
    save("transparent.gif", pal, transparency=3, interlace=False)
    second = pattern(37, 29).transpose(Image.Transpose.FLIP_LEFT_RIGHT).convert("P", palette=Image.Palette.ADAPTIVE, colors=32)
    save("animated.gif", pal, save_all=True, append_images=[second], duration=100, loop=0)
    small = os.path.join(tmp, "small.gif")
    pattern(20, 15).convert("P", palette=Image.Palette.ADAPTIVE, colors=16).save(small, interlace=False)
    g = bytearray(open(small, "rb").read())
    g[6:10] = struct.pack("<HH", 37, 29)
    g[11] = 5
    at = 13 + (3 << ((g[10] & 7) + 1) if g[10] & 0x80 else 0)
    while g[at] == 0x21:  # skip extensions to the image descriptor
        at += 2
        while g[at]:
            at += g[at] + 1
        at += 1
    assert g[at] == 0x2C
    g[at + 1:at + 5] = struct.pack("<HH", 3, 2)
    with open(os.path.join(OUT, "frame-on-background.gif"), "wb") as fh:
        fh.write(g)
    files["frame-on-background.gif"] = {}
    # BMP: Pillow (24-bit, 8-bit palette, 1-bit), ImageMagick (4-bit palette, 16-bit 565 bit fields,
    # 32-bit with alpha in a 124-byte header), and a top-down copy of the 24-bit file (height < 0)
    save("rgb24.bmp", base)
    save("palette8.bmp", base.convert("P", palette=Image.Palette.ADAPTIVE, colors=200))
    save("mono1.bmp", base.convert("1"))
    for name, args in [
        ("palette4.bmp", ["-colors", "12", "-type", "palette", "BMP3:"]),
        ("rgb565.bmp", ["-define", "bmp:subtype=RGB565", "BMP:"]),
        ("rgba32-v5.bmp", ["-alpha", "set", "-channel", "A", "-evaluate", "set", "60%", "+channel", "BMP:"]),
    ]:
        run("convert", os.path.join(OUT, "rgb8.png" if "rgba" not in name else "rgba8.png"), *args[:-1], args[-1] + os.path.join(OUT, name))
        files[name] = {}
    bm = bytearray(open(os.path.join(OUT, "rgb24.bmp"), "rb").read())
    off, w, h = struct.unpack_from("<I", bm, 10)[0], *struct.unpack_from("<ii", bm, 18)
    stride = (w * 3 + 3) & ~3
    rows = [bm[off + y * stride: off + (y + 1) * stride] for y in range(h)]
    bm[off:] = b"".join(reversed(rows))
    struct.pack_into("<i", bm, 22, -h)
    with open(os.path.join(OUT, "rgb24-topdown.bmp"), "wb") as fh:
        fh.write(bm)
    files["rgb24-topdown.bmp"] = {}
    run("cwebp", "-quiet", "-lossless", src, "-o", os.path.join(OUT, "rgb8-lossless.webp"))
    run("cwebp", "-quiet", "-q", "80", src, "-o", os.path.join(OUT, "rgb8-lossy.webp"))
    run("cwebp", "-quiet", "-q", "80", os.path.join(OUT, "rgba8.png"), "-o", os.path.join(OUT, "rgba8-lossy-alpha.webp"))
    run("img2webp", "-lossless", src, os.path.join(OUT, "grey8.png"), "-o", os.path.join(OUT, "animated.webp"))
    files.update({n: {} for n in ("rgb8-lossless.webp", "rgb8-lossy.webp", "rgba8-lossy-alpha.webp", "animated.webp")})
    # lossless WebP of several kinds (cwebp picks the transforms: palette images get colour
    # indexing with 1/2/4/8 pixels a byte, photos predictor + cross-colour + colour cache; the
    # larger pattern gets meta prefix codes); dwebp's decode is the reference
    bigger = os.path.join(tmp, "pattern.png")
    pattern(203, 150).save(bigger)
    photo_png = os.path.join(tmp, "photo.png")
    photo(99, 67).save(photo_png)
    for name, source, args in [
        ("photo-lossless-z0.webp", photo_png, ["-lossless", "-z", "0"]),
        ("photo-lossless-z9.webp", photo_png, ["-lossless", "-z", "9"]),
        ("photo-near-lossless.webp", photo_png, ["-lossless", "-near_lossless", "40"]),
        ("pattern-203x150-lossless.webp", bigger, ["-lossless", "-m", "6", "-q", "100"]),
        ("rgba8-lossless-exact.webp", os.path.join(OUT, "rgba8.png"), ["-lossless", "-exact"]),
        ("grey1-lossless.webp", os.path.join(OUT, "grey1.png"), ["-lossless"]),
        ("palette4-lossless.webp", os.path.join(OUT, "palette4.png"), ["-lossless"]),
        ("palette2-lossless.webp", os.path.join(OUT, "palette2-trns.png"), ["-lossless", "-exact"]),
        ("palette8-lossless.webp", os.path.join(OUT, "palette8.png"), ["-lossless"]),
    ]:
        run("cwebp", "-quiet", *args, source, "-o", os.path.join(OUT, name))
        files[name] = {}
    # lossy WebP of several kinds (VP8 is always 4:2:0; odd sizes leave partial macroblocks and
    # chroma samples): default (strong) loop filter, the simple filter, no filter with one
    # segment, and VP8X + ALPH with raw alpha and with quantised, filtered alpha
    for name, source, args in [
        ("photo-lossy.webp", photo_png, ["-q", "80"]),
        ("photo-lossy-simple-filter.webp", photo_png, ["-q", "40", "-nostrong", "-sharpness", "3"]),
        ("pattern-203x150-lossy-nofilter.webp", bigger, ["-q", "95", "-f", "0", "-segments", "1", "-m", "6"]),
        ("rgba8-lossy-alpha-raw.webp", os.path.join(OUT, "rgba8.png"), ["-q", "80", "-alpha_method", "0"]),
        ("rgba8-lossy-alpha-filtered.webp", os.path.join(OUT, "rgba8.png"), ["-q", "70", "-alpha_q", "50", "-alpha_filter", "best"]),
    ]:
        run("cwebp", "-quiet", *args, source, "-o", os.path.join(OUT, name))
        files[name] = {}
    # a VP8X container (metadata chunk) around a VP8L image
    exif = os.path.join(tmp, "exif.bin")
    with open(exif, "wb") as fh:
        fh.write(b"Exif\0\0MM\0*\0\0\0\x08\0\0")
    run("webpmux", "-set", "exif", exif, os.path.join(OUT, "rgb8-lossless.webp"), "-o", os.path.join(OUT, "rgb8-lossless-vp8x.webp"))
    files["rgb8-lossless-vp8x.webp"] = {}

    for name in sorted(files):
        if name.endswith(".webp"):
            # no llama.cpp reference (stb_image reads no WebP): libwebp's own decoder (dwebp, RGB PPM)
            img = Image.open(os.path.join(OUT, name))
            if getattr(img, "n_frames", 1) > 1:
                files[name] = {"width": img.width, "height": img.height, "animated": True}
                continue
            files[name] = {"width": img.width, "height": img.height, "lossless": "VP8L" in open(os.path.join(OUT, name), "rb").read(64).decode("latin1")}
            # lossless and lossy alike: the RGB dwebp writes (alpha dropped)
            ppm = os.path.join(tmp, "out.ppm")
            run("dwebp", "-quiet", os.path.join(OUT, name), "-ppm", "-o", ppm)
            files[name]["sha256"] = sha(open(ppm, "rb").read()[-img.width * img.height * 3:])
            continue
        raw = os.path.join(tmp, "out.rgb")
        w, h = map(int, run(a.dump, "decode", os.path.join(OUT, name), raw).split())
        data = open(raw, "rb").read()
        files[name] = {"width": w, "height": h, "sha256": sha(data)}
        if name.endswith(".jpg") or name.endswith(".gif"):
            files[name]["rgb_gz_base64"] = base64.b64encode(gzip.compress(data, 9, mtime=0)).decode()

    # mtmd's smart resize + padding of whole images (factor, min, max)
    resize = []
    for name, f, mn, mx in [
        ("rgb8.png", 28, 8 * 28 * 28, 4096 * 28 * 28),  # 37x29 -> below min: upscaled + padded
        ("rgb8.png", 8, 4 * 64, 6 * 64),  # max 384 px: downscaled (antialiased) + padded
        ("rgb8.png", 4, 64, 37 * 29 * 4),  # rounded to 36x28: downscaled a little, one side only
        ("photo-444.jpg", 32, 8 * 32 * 32, 4096 * 32 * 32),
        ("photo-444.jpg", 14, 4 * 196, 12 * 196),
    ]:
        raw = os.path.join(tmp, "out.rgb")
        norm = os.path.join(tmp, "out.f32")
        # Qwen2.5-VL's mean / std (CLIP's), as the mmproj stores them
        mean, std = ["0.48145466", "0.4578275", "0.40821073"], ["0.26862954", "0.26130258", "0.27577711"]
        w, h, tw, th = map(int, run(a.dump, "resize", os.path.join(OUT, name), str(f), str(mn), str(mx), raw, norm, *mean, *std).split())
        resize.append({"image": name, "factor": f, "minPixels": mn, "maxPixels": mx, "width": tw, "height": th, "sha256": sha(open(raw, "rb").read()),
                       "mean": [float(v) for v in mean], "std": [float(v) for v in std], "f32_sha256": sha(open(norm, "rb").read())})

    # Pillow's bicubic resize of the PNG's pixels alone (no padding): up, down, one side, both
    pillow = []
    for tw, th in [(37, 29), (74, 29), (37, 60), (80, 61), (18, 14), (10, 29), (37, 7), (5, 3), (111, 13), (1, 1)]:
        r = base.resize((tw, th), Image.Resampling.BICUBIC)
        pillow.append({"width": tw, "height": th, "sha256": sha(r.tobytes())})

    # smart-size targets: sizes around rounding points, extremes, both bounds
    sizes = []
    dims = [(1, 1), (1, 1000), (1000, 1), (13, 7), (27, 29), (41, 42), (42, 43), (56, 84), (130, 60), (160, 96), (168, 140), (224, 224),
            (333, 500), (640, 480), (800, 600), (1024, 768), (1920, 1080), (1080, 1920), (3000, 2000), (4032, 3024), (7000, 7000), (12345, 678), (50, 20000)]
    for f, mn, mx in [(28, 8 * 784, 4096 * 784), (32, 8 * 1024, 4096 * 1024), (28, 3136, 12845056), (28, 256 * 784, 1280 * 784), (16, 100, 10000)]:
        out = run(a.dump, "sizes", str(f), str(mn), str(mx), stdin="\n".join(f"{w} {h}" for w, h in dims) + "\n")
        for line in out.strip().split("\n"):
            w, h, tw, th = map(int, line.split())
            sizes.append([w, h, f, mn, mx, tw, th])

    with open(os.path.join(OUT, "expected.json"), "w") as fh:
        json.dump({"decode": files, "resize": resize, "pillow": {"source": "rgb8.png", "cases": pillow}, "sizes": sizes}, fh, indent=1)
        fh.write("\n")


if __name__ == "__main__":
    main()
