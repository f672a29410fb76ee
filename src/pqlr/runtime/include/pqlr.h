/* pqlr.h: the PQLR runtime in one include -- types, CNN kernels (pqlr_nn.h), element-wise
 * (pqlr_elem.h), pooling (pqlr_pool.h), data movement (pqlr_shape.h), transformer kernels
 * (pqlr_tf.h) -- and PQLR_CHECK, which generated code wraps around every kernel call. */
#ifndef PQLR_H
#define PQLR_H

#include "pqlr_types.h"
#include "pqlr_nn.h"
#include "pqlr_elem.h"
#include "pqlr_pool.h"
#include "pqlr_shape.h"

#if defined(__has_include)
#if __has_include("pqlr_tf.h")
#include "pqlr_tf.h"
#endif
#else
#include "pqlr_tf.h"
#endif

/* Evaluate a kernel call; return its status from the enclosing function unless it is PQLR_OK. */
#ifndef PQLR_CHECK
#define PQLR_CHECK(call)                      \
    do {                                      \
        pqlr_status pqlr_check_s_ = (call);   \
        if (pqlr_check_s_ != PQLR_OK)         \
            return pqlr_check_s_;             \
    } while (0)
#endif

#endif /* PQLR_H */
