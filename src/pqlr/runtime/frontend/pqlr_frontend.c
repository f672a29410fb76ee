/* pqlr_frontend.c: the streaming side of the frontend (hop in, ring of feature frames out) and the
 * whole-clip function used by tests and by pqlr.deploy.frontend.c_features. See pqlr_frontend.h. */
#include <string.h>
#include "pqlr_frontend.h"

void pqlr_frontend_init(pqlr_frontend_state *s)
{
    memset(s, 0, sizeof(*s));
    /* the ring filler: features of digital silence, computed by the same code as every frame */
    pqlr_frontend_frame(s->samples, s->silence, s->fft);
}

int pqlr_frontend_push(pqlr_frontend_state *s, const int16_t *hop_samples)
{
    if (s == NULL || hop_samples == NULL) return PQLR_ERR_ARG;
    /* slide the buffer by one hop; frame t = samples [t*hop, t*hop + win) starts at samples[0] */
    memmove(s->samples, s->samples + PQLR_FE_HOP,
            (PQLR_FE_BUF_SAMPLES - PQLR_FE_HOP) * sizeof(int16_t));
    memcpy(s->samples + PQLR_FE_BUF_SAMPLES - PQLR_FE_HOP, hop_samples, PQLR_FE_HOP * sizeof(int16_t));
    if (s->filled < PQLR_FE_BUF_HOPS) ++s->filled;
    if (s->filled < PQLR_FE_BUF_HOPS) return 0;
    pqlr_frontend_frame(s->samples, s->frames[s->head], s->fft);
    s->head = (s->head + 1) % PQLR_FE_N_FRAMES;
    if (s->count < PQLR_FE_N_FRAMES) ++s->count;
    return 1;
}

uint32_t pqlr_frontend_window(const pqlr_frontend_state *s, int8_t *dst)
{
    /* row r (oldest first) is ring slot (head + r) mod N; rows before the first frame are silence */
    const uint32_t missing = PQLR_FE_N_FRAMES - s->count;
    for (uint32_t r = 0; r < PQLR_FE_N_FRAMES; ++r) {
        const int8_t *src = r < missing ? s->silence : s->frames[(s->head + r) % PQLR_FE_N_FRAMES];
        memcpy(dst + r * PQLR_FE_N_OUT, src, PQLR_FE_N_OUT);
    }
    return s->count;
}

pqlr_status pqlr_frontend_clip(pqlr_frontend_state *s, const int16_t *wave, int8_t *out)
{
    if (s == NULL || wave == NULL || out == NULL) return PQLR_ERR_ARG;
    for (uint32_t t = 0; t < PQLR_FE_N_FRAMES; ++t)
        pqlr_frontend_frame(wave + t * PQLR_FE_HOP, out + t * PQLR_FE_N_OUT, s->fft);
    return PQLR_OK;
}
