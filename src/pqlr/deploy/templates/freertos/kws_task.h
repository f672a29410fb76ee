/* kws_task.h: FreeRTOS keyword-spotting task (PQLR template). Static allocation only.
 *
 * Data flow: an audio source (I2S DMA ISR or a driver task) sends one hop of int16 PCM,
 * PQLR_FE_HOP samples at PQLR_FE_SAMPLE_RATE, per queue item to the queue kws_task_start() returns.
 * The task runs the fixed-point frontend on each hop (pqlr_frontend.h), which keeps the sliding
 * window of PQLR_FE_N_FRAMES feature frames; every KWS_INFER_EVERY_HOPS hops (once the window is
 * full) it runs pqlr_invoke() from the generated model.h on that window, averages the wake-class
 * output over the last KWS_SMOOTH_COUNT inferences (integer sum, no division), and calls the user
 * callback when the average reaches KWS_THRESHOLD and the last detection is at least
 * KWS_REFRACTORY_HOPS hops old. The callback runs in the KWS task: keep it short.
 *
 * Kernel needs: configSUPPORT_STATIC_ALLOCATION 1 and configUSE_MUTEXES 1 (the defaults of ESP-IDF).
 * Every KWS_* setting below can be overridden with -D or by defining it before this header.
 */
#ifndef KWS_TASK_H
#define KWS_TASK_H

#include <stdint.h>
#ifdef ESP_PLATFORM                   /* ESP-IDF keeps the kernel headers under freertos/ */
#include "freertos/FreeRTOS.h"
#include "freertos/task.h"
#include "freertos/queue.h"
#include "freertos/semphr.h"
#else
#include "FreeRTOS.h"
#include "task.h"
#include "queue.h"
#include "semphr.h"
#endif
#include "pqlr_frontend.h"
#include "model.h"

#ifndef KWS_WAKE_CLASS
#ifdef PQLR_WAKE_CLASS
#define KWS_WAKE_CLASS PQLR_WAKE_CLASS  /* the model's output index that means "keyword" */
#else
#error "define KWS_WAKE_CLASS (the wake word's output index) or PQLR_WAKE_CLASS in model.h"
#endif
#endif
#ifndef KWS_INFER_EVERY_HOPS
#define KWS_INFER_EVERY_HOPS 4        /* K: one inference per 4 hops (80 ms at 20 ms hops) */
#endif
#ifndef KWS_SMOOTH_COUNT
#define KWS_SMOOTH_COUNT 3            /* M: moving average over the last 3 inferences */
#endif
#ifndef KWS_THRESHOLD
#define KWS_THRESHOLD 64              /* wake output, int8 units: p = 0.75 for a softmax output quantized
                                         with scale 1/256, zero point -128 (or a logit threshold) */
#endif
#ifndef KWS_REFRACTORY_HOPS
#define KWS_REFRACTORY_HOPS (PQLR_FE_CLIP_SAMPLES / PQLR_FE_HOP)   /* one window (1 s) */
#endif
#ifndef KWS_QUEUE_LENGTH
#define KWS_QUEUE_LENGTH 4            /* hops buffered between the audio source and the task */
#endif
#ifndef KWS_TASK_PRIORITY
#define KWS_TASK_PRIORITY (tskIDLE_PRIORITY + 2)
#endif

/* Stack of the KWS task. The frontend state (3.8 KB with its FFT scratch), model input/output, arena
 * and queue storage are static, so the stack holds only call frames.
 * Measured by tests/deploy/test_freertos_task.py: painted stack, FreeRTOS stand-in, x86-64 gcc -O2,
 * the test's one-layer model: 1912 bytes, of which about 1.4 KB is glibc's pthread_cond_wait under
 * the stand-in's xQueueReceive (the real kernel's blocking call is far smaller). The frontend path
 * itself peaks at 460 bytes on rv32imac and cortex-m4 (painted stack in QEMU, test_frontend.py).
 * The margin covers the generated model's kernels, the callback and an interrupt frame; raise
 * KWS_TASK_STACK_MARGIN_BYTES for a deeper callback or model. */
#define KWS_TASK_STACK_MEASURED_BYTES 1912
#ifndef KWS_TASK_STACK_MARGIN_BYTES
#define KWS_TASK_STACK_MARGIN_BYTES 1024
#endif
#define KWS_TASK_STACK_BYTES (KWS_TASK_STACK_MEASURED_BYTES + KWS_TASK_STACK_MARGIN_BYTES)
#define KWS_TASK_STACK_DEPTH ((configSTACK_DEPTH_TYPE)((KWS_TASK_STACK_BYTES + sizeof(StackType_t) - 1) \
                                                      / sizeof(StackType_t)))

typedef struct {
    uint32_t hop;          /* hops received when it fired (1 = the first hop) */
    int32_t score;         /* smoothed wake output: sum of the last KWS_SMOOTH_COUNT outputs */
} kws_detection;

typedef void (*kws_detect_fn)(const kws_detection *detection, void *user);

typedef struct {
    uint32_t hops;         /* hops taken from the queue and fully processed */
    uint32_t inferences;   /* pqlr_invoke calls */
    uint32_t detections;   /* callback calls */
    uint32_t errors;       /* pqlr_invoke calls that did not return PQLR_OK */
} kws_stats;

/* Create the queue and the task (one instance). Returns the audio queue (items: int16_t[PQLR_FE_HOP]),
 * or NULL when called twice or when the kernel refused. */
QueueHandle_t kws_task_start(kws_detect_fn on_detect, void *user);

/* The task's handle (NULL before kws_task_start). */
TaskHandle_t kws_task_handle(void);

/* A consistent copy of the counters. */
void kws_task_get_stats(kws_stats *out);

#endif /* KWS_TASK_H */
