/* pqlr_profile.h: per-layer profiling hooks a generated model calls around layer i.
 *
 *     PQLR_LAYER_BEGIN(i); ... layer i ... PQLR_LAYER_END(i);
 *
 * By default they compile to nothing. The verify harness (runtime/platform/verify_main.c) builds
 * the model with -DPQLR_PROFILE=1, which turns them into calls that read the instruction counter:
 * event code 2 + 2*i marks the start of layer i, 3 + 2*i its end (codes 0/1 are the harness's own
 * whole-inference marks).
 */
#ifndef PQLR_PROFILE_H
#define PQLR_PROFILE_H

#include <stdint.h>

#if defined(PQLR_PROFILE) && PQLR_PROFILE
void pqlr_profile_mark(uint32_t code);
#define PQLR_LAYER_BEGIN(i) pqlr_profile_mark(2u + 2u * (uint32_t)(i))
#define PQLR_LAYER_END(i) pqlr_profile_mark(3u + 2u * (uint32_t)(i))
#else
#ifndef PQLR_LAYER_BEGIN
#define PQLR_LAYER_BEGIN(i) ((void)0)
#endif
#ifndef PQLR_LAYER_END
#define PQLR_LAYER_END(i) ((void)0)
#endif
#endif

#endif /* PQLR_PROFILE_H */
