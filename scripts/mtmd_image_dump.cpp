// llama.cpp's own image path, for test fixtures of src/vision/image: stb_image decoding (3
// channels, as mtmd-helper does) and mtmd's smart-size + bicubic resize + padding, compiled from
// the llama.cpp source (mtmd-image.cpp is included whole, so its img_tool is the code under test's
// reference, not a copy). Build and use: scripts/vision-image-fixtures.sh.
//
//   mtmd_image_dump decode IN OUT.rgb              -> prints "W H", writes RGB bytes
//   mtmd_image_dump resize IN F MIN MAX OUT.rgb [OUT.f32 MEAN0 MEAN1 MEAN2 STD0 STD1 STD2]
//       -> prints "W H TW TH", writes the padded RGB bytes (and the normalised float32 pixels,
//          interleaved RGB, as clip_image_f32::from_u8 + normalize make them)
//   mtmd_image_dump sizes F MIN MAX < "W H" lines  -> prints "W H TW TH" per line
#define STB_IMAGE_IMPLEMENTATION
#include "stb/stb_image.h"

#include "mtmd-image.cpp"

// clip.cpp defines the logger that mtmd-image.cpp's LOG_* macros use; it is not linked here
struct clip_logger_state g_logger_state = {clip_log_callback_default, NULL};

#include <cstdio>
#include <cstdlib>
#include <cstring>

static clip_image_u8 load(const char * path) {
    int nx, ny, nc;
    unsigned char * data = stbi_load(path, &nx, &ny, &nc, 3);
    if (!data) {
        fprintf(stderr, "%s: %s\n", path, stbi_failure_reason());
        exit(1);
    }
    clip_image_u8 img;
    img.set_size({nx, ny}, false);
    img.cpy_buf(std::vector<uint8_t>(data, data + (size_t) nx * ny * 3));
    stbi_image_free(data);
    return img;
}

static void save(const char * path, const clip_image_u8 & img) {
    FILE * f = fopen(path, "wb");
    const auto & buf = img.get_ro_buf();
    fwrite(buf.data(), 1, buf.size(), f);
    fclose(f);
}

int main(int argc, char ** argv) {
    if (argc >= 4 && !strcmp(argv[1], "decode")) {
        clip_image_u8 img = load(argv[2]);
        save(argv[3], img);
        printf("%d %d\n", img.get_size().width, img.get_size().height);
        return 0;
    }
    if (argc >= 7 && !strcmp(argv[1], "resize")) {
        clip_image_u8 img = load(argv[2]);
        const int f = atoi(argv[3]), mn = atoi(argv[4]), mx = atoi(argv[5]);
        clip_image_size t = img_tool::calc_size_preserved_ratio(img.get_size(), {f, mn, mx, 0});
        clip_image_u8 out;
        img_tool::resize(img, out, t, RESIZE_ALGO_BICUBIC, PAD_CEIL, {0, 0, 0});
        save(argv[6], out);
        if (argc >= 14) {
            const float mean[3] = {(float) atof(argv[8]), (float) atof(argv[9]), (float) atof(argv[10])};
            const float std_[3] = {(float) atof(argv[11]), (float) atof(argv[12]), (float) atof(argv[13])};
            clip_image_f32 f32;
            f32.from_u8(out);
            f32.normalize(mean, std_);
            FILE * fo = fopen(argv[7], "wb");
            const auto & fb = f32.get_ro_buf();
            fwrite(fb.data(), sizeof(float), fb.size(), fo);
            fclose(fo);
        }
        printf("%d %d %d %d\n", img.get_size().width, img.get_size().height, t.width, t.height);
        return 0;
    }
    if (argc >= 5 && !strcmp(argv[1], "sizes")) {
        const int f = atoi(argv[2]), mn = atoi(argv[3]), mx = atoi(argv[4]);
        int w, h;
        while (scanf("%d %d", &w, &h) == 2) {
            clip_image_size t = img_tool::calc_size_preserved_ratio({w, h}, {f, mn, mx, 0});
            printf("%d %d %d %d\n", w, h, t.width, t.height);
        }
        return 0;
    }
    fprintf(stderr, "usage: see the comment at the top of %s\n", __FILE__);
    return 2;
}
