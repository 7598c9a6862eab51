// time llama.cpp's image encode (mtmd_encode_chunk) alone: wall ms and process CPU ms per repetition
#include "llama.h"
#include "mtmd.h"
#include "mtmd-helper.h"
#include <sys/resource.h>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
static void quiet(enum ggml_log_level, const char *, void *) {}
static double cpu_ms() { rusage u; getrusage(RUSAGE_SELF, &u); return (u.ru_utime.tv_sec + u.ru_stime.tv_sec) * 1e3 + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e3; }
int main(int argc, char ** argv) {
    if (argc < 6) { fprintf(stderr, "usage: lm mmproj image threads reps\n"); return 2; }
    int nt = atoi(argv[4]), reps = atoi(argv[5]);
    llama_log_set(quiet, nullptr); mtmd_helper_log_set(quiet, nullptr);
    ggml_backend_load_all(); llama_backend_init();
    auto mp = llama_model_default_params(); mp.n_gpu_layers = 0;
    llama_model * model = llama_model_load_from_file(argv[1], mp);
    if (!model) return 1;
    auto p = mtmd_context_params_default(); p.use_gpu = false; p.print_timings = false; p.n_threads = nt;
    p.flash_attn_type = LLAMA_FLASH_ATTN_TYPE_DISABLED;
    mtmd_context * ctx = mtmd_init_from_file(argv[2], model, p);
    if (!ctx) return 1;
    auto res = mtmd_helper_bitmap_init_from_file(ctx, argv[3], false, mtmd_helper_init_opt_default());
    if (!res.bitmap) return 1;
    std::string prompt = mtmd_default_marker();
    mtmd_input_text text = { prompt.c_str(), prompt.size(), false, true };
    mtmd_input_chunks * chunks = mtmd_input_chunks_init();
    const mtmd_bitmap * b = res.bitmap;
    if (mtmd_tokenize(ctx, chunks, &text, &b, 1)) return 1;
    for (size_t i = 0; i < mtmd_input_chunks_size(chunks); i++) {
        auto * c = mtmd_input_chunks_get(chunks, i);
        if (mtmd_input_chunk_get_type(c) != MTMD_INPUT_CHUNK_TYPE_IMAGE) continue;
        for (int r = 0; r < reps; r++) {
            double c0 = cpu_ms(); auto t0 = std::chrono::steady_clock::now();
            if (mtmd_encode_chunk(ctx, c)) return 1;
            auto t1 = std::chrono::steady_clock::now(); double c1 = cpu_ms();
            double la[3]; getloadavg(la, 3);
            printf("tokens %zu threads %d rep %d: wall %.0f ms, cpu %.0f ms, load %.1f\n", mtmd_input_chunk_get_n_tokens(c), nt, r,
                   std::chrono::duration<double, std::milli>(t1 - t0).count(), c1 - c0, la[0]);
            fflush(stdout);
        }
    }
    return 0;
}
