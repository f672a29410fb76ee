/* kws_task.c: the FreeRTOS keyword-spotting task (PQLR template); see kws_task.h. */
#include <string.h>
#include "kws_task.h"

/* compile-time checks: the model's input is the frontend's window, the wake class exists */
typedef char kws_input_is_frontend_window[(PQLR_INPUT_BYTES == PQLR_FE_WINDOW_BYTES) ? 1 : -1];
typedef char kws_wake_class_in_range[(KWS_WAKE_CLASS < PQLR_NUM_CLASSES &&
                                      PQLR_NUM_CLASSES <= PQLR_OUTPUT_BYTES) ? 1 : -1];
#ifdef PQLR_INPUT_ZERO_POINT   /* the frontend quantizes exactly as the model's input expects */
typedef char kws_frontend_zero_point_matches[(PQLR_FE_ZERO_POINT == PQLR_INPUT_ZERO_POINT) ? 1 : -1];
#endif
typedef char kws_settings_valid[(KWS_INFER_EVERY_HOPS >= 1 && KWS_SMOOTH_COUNT >= 1 &&
                                 KWS_QUEUE_LENGTH >= 1) ? 1 : -1];

/* everything static: nothing on the heap, little on the stack */
static StaticTask_t task_tcb;
static StackType_t task_stack[KWS_TASK_STACK_DEPTH];
static TaskHandle_t task_handle;
static StaticQueue_t queue_ctrl;
static uint8_t queue_storage[KWS_QUEUE_LENGTH * PQLR_FE_HOP * sizeof(int16_t)];
static QueueHandle_t audio_queue;

static pqlr_frontend_state frontend;
static int16_t hop_buf[PQLR_FE_HOP];
static int8_t model_in[PQLR_INPUT_BYTES];
static int8_t model_out[PQLR_OUTPUT_BYTES];
static union { uint8_t bytes[PQLR_ARENA_BYTES + (PQLR_ARENA_BYTES == 0)]; int64_t align; } arena;

static kws_detect_fn detect_cb;
static void *detect_user;
static kws_stats stats;
static StaticSemaphore_t stats_lock_buf;   /* a mutex, not a critical section: the same call on */
static SemaphoreHandle_t stats_lock;       /* vanilla FreeRTOS and ESP-IDF (whose takes a spinlock) */

static void count(uint32_t *counter)
{
    xSemaphoreTake(stats_lock, portMAX_DELAY);
    ++*counter;
    xSemaphoreGive(stats_lock);
}

/* smoothing and detection state (static: the task's stack holds only call frames) */
static int32_t history[KWS_SMOOTH_COUNT];      /* wake outputs of the last inferences */
static int32_t history_sum;
static uint32_t history_filled, history_pos, hop_count, since_infer, last_detect;
static int detected;

static void process_hop(void)
{
    ++hop_count;
    if (pqlr_frontend_push(&frontend, hop_buf) != 1) return;        /* first window still filling */
    if (frontend.count < PQLR_FE_N_FRAMES || ++since_infer < KWS_INFER_EVERY_HOPS) return;
    since_infer = 0;

    pqlr_frontend_window(&frontend, model_in);
    if (pqlr_invoke(model_in, model_out, arena.bytes) != PQLR_OK) {
        count(&stats.errors);
        return;
    }
    count(&stats.inferences);

    /* moving sum of the wake output over the last KWS_SMOOTH_COUNT inferences */
    history_sum += (int32_t)model_out[KWS_WAKE_CLASS] - history[history_pos];
    history[history_pos] = model_out[KWS_WAKE_CLASS];
    history_pos = (history_pos + 1) % KWS_SMOOTH_COUNT;
    if (history_filled < KWS_SMOOTH_COUNT) ++history_filled;

    if (history_filled == KWS_SMOOTH_COUNT && history_sum >= (int32_t)KWS_THRESHOLD * KWS_SMOOTH_COUNT &&
        (!detected || hop_count - last_detect >= (uint32_t)KWS_REFRACTORY_HOPS)) {
        kws_detection d;
        d.hop = hop_count;
        d.score = history_sum;
        detected = 1;
        last_detect = hop_count;
        count(&stats.detections);
        if (detect_cb != NULL) detect_cb(&d, detect_user);
    }
}

static void kws_task(void *arg)
{
    (void)arg;
    pqlr_frontend_init(&frontend);
    for (;;) {
        if (xQueueReceive(audio_queue, hop_buf, portMAX_DELAY) != pdPASS) continue;
        process_hop();
        count(&stats.hops);     /* counted once the hop is fully processed */
    }
}

QueueHandle_t kws_task_start(kws_detect_fn on_detect, void *user)
{
    if (task_handle != NULL) return NULL;
    detect_cb = on_detect;
    detect_user = user;
    stats_lock = xSemaphoreCreateMutexStatic(&stats_lock_buf);
    if (stats_lock == NULL) return NULL;
    audio_queue = xQueueCreateStatic(KWS_QUEUE_LENGTH, PQLR_FE_HOP * sizeof(int16_t), queue_storage, &queue_ctrl);
    if (audio_queue == NULL) return NULL;
    task_handle = xTaskCreateStatic(kws_task, "kws", KWS_TASK_STACK_DEPTH, NULL, KWS_TASK_PRIORITY,
                                    task_stack, &task_tcb);
    return task_handle != NULL ? audio_queue : NULL;
}

TaskHandle_t kws_task_handle(void)
{
    return task_handle;
}

void kws_task_get_stats(kws_stats *out)
{
    if (stats_lock == NULL) {             /* not started: all zero */
        memset(out, 0, sizeof(*out));
        return;
    }
    xSemaphoreTake(stats_lock, portMAX_DELAY);
    memcpy(out, &stats, sizeof(*out));
    xSemaphoreGive(stats_lock);
}
