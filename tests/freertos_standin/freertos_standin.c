/* freertos_standin.c: the FreeRTOS API subset of FreeRTOS.h / task.h / queue.h / semphr.h over POSIX
 * threads, for host tests of the PQLR FreeRTOS task. Blocking queues with tick timeouts (1 tick =
 * 1 ms, CLOCK_MONOTONIC), tasks as threads on painted stacks, critical sections as one recursive
 * mutex. Link with -pthread. */
#define _POSIX_C_SOURCE 200809L
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "FreeRTOS.h"
#include "queue.h"
#include "semphr.h"
#include "task.h"

#define PAINT_WORD 0xA5A5A5A5u
#define HOST_STACK_EXTRA (1u << 20)     /* host frames (64-bit, sanitizers) need far more than targets */

static pthread_key_t current_key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static pthread_mutex_t critical;
static struct timespec t0;

static void init_once(void)
{
    pthread_mutexattr_t a;
    pthread_key_create(&current_key, NULL);
    pthread_mutexattr_init(&a);
    pthread_mutexattr_settype(&a, PTHREAD_MUTEX_RECURSIVE);
    pthread_mutex_init(&critical, &a);
    pthread_mutexattr_destroy(&a);
    clock_gettime(CLOCK_MONOTONIC, &t0);
}

void vStandinAssertFailed(const char *expr, const char *file, int line)
{
    fprintf(stderr, "configASSERT(%s) failed at %s:%d\n", expr, file, line);
    abort();
}

__attribute__((weak)) void vApplicationStackOverflowHook(TaskHandle_t task, char *name)
{
    (void)task;
    fprintf(stderr, "stack overflow in task %s\n", name);
    abort();
}

void vStandinEnterCritical(void) { pthread_once(&once, init_once); pthread_mutex_lock(&critical); }
void vStandinExitCritical(void) { pthread_mutex_unlock(&critical); }

/* ------------------------------------------------------------------ time */
TickType_t xTaskGetTickCount(void)
{
    struct timespec t;
    pthread_once(&once, init_once);
    clock_gettime(CLOCK_MONOTONIC, &t);
    int64_t ms = (int64_t)(t.tv_sec - t0.tv_sec) * 1000 + (t.tv_nsec - t0.tv_nsec) / 1000000;
    return (TickType_t)(ms * configTICK_RATE_HZ / 1000);
}

void vTaskDelay(TickType_t ticks)
{
    uint64_t ms = (uint64_t)ticks * 1000u / configTICK_RATE_HZ;
    struct timespec d = {(time_t)(ms / 1000), (long)(ms % 1000) * 1000000L};
    while (nanosleep(&d, &d) != 0 && errno == EINTR) {}
}

static void deadline(TickType_t wait, struct timespec *abs)
{
    uint64_t ms = (uint64_t)wait * 1000u / configTICK_RATE_HZ;
    clock_gettime(CLOCK_MONOTONIC, abs);
    abs->tv_sec += (time_t)(ms / 1000);
    abs->tv_nsec += (long)(ms % 1000) * 1000000L;
    if (abs->tv_nsec >= 1000000000L) { abs->tv_sec += 1; abs->tv_nsec -= 1000000000L; }
}

/* ------------------------------------------------------------------ tasks */
static void *trampoline(void *arg)
{
    StaticTask_t *t = (StaticTask_t *)arg;
    pthread_setspecific(current_key, t);
    t->entry_sp = (uintptr_t)__builtin_frame_address(0);
    t->fn(t->params);
    t->running = 0;          /* FreeRTOS task functions must not return; tolerated here */
    return NULL;
}

TaskHandle_t xTaskCreateStatic(TaskFunction_t fn, const char *name, const configSTACK_DEPTH_TYPE depth,
                               void *params, UBaseType_t priority, StackType_t *stack, StaticTask_t *tcb)
{
    pthread_attr_t attr;
    void *mem = NULL;
    if (fn == NULL || stack == NULL || tcb == NULL || depth == 0 || priority >= configMAX_PRIORITIES) return NULL;
    pthread_once(&once, init_once);
    memset(tcb, 0, sizeof(*tcb));
    tcb->fn = fn;
    tcb->params = params;
    tcb->name = name;
    tcb->priority = priority;
    tcb->depth = depth;
    tcb->host_stack_bytes = (size_t)depth * sizeof(StackType_t) * 8 + HOST_STACK_EXTRA;
    if (posix_memalign(&mem, (size_t)sysconf(_SC_PAGESIZE), tcb->host_stack_bytes) != 0) return NULL;
    tcb->host_stack = (unsigned char *)mem;
    for (size_t i = 0; i < tcb->host_stack_bytes / 4; ++i) ((uint32_t *)mem)[i] = PAINT_WORD;
    pthread_attr_init(&attr);
    pthread_attr_setstack(&attr, mem, tcb->host_stack_bytes);
    tcb->running = 1;
    if (pthread_create(&tcb->thread, &attr, trampoline, tcb) != 0) {
        pthread_attr_destroy(&attr);
        free(mem);
        tcb->host_stack = NULL;
        return NULL;
    }
    pthread_attr_destroy(&attr);
    return tcb;
}

TaskHandle_t xTaskGetCurrentTaskHandle(void)
{
    pthread_once(&once, init_once);
    return (TaskHandle_t)pthread_getspecific(current_key);
}

size_t xStandinStackUsedBytes(TaskHandle_t task)
{
    if (task == NULL) task = xTaskGetCurrentTaskHandle();
    if (task == NULL || task->host_stack == NULL || task->entry_sp == 0) return 0;
    const uint32_t *w = (const uint32_t *)task->host_stack;
    size_t i = 0;
    while (i < task->host_stack_bytes / 4 && w[i] == PAINT_WORD) ++i;   /* lowest word ever written */
    uintptr_t low = (uintptr_t)(w + i);
    return low < task->entry_sp ? (size_t)(task->entry_sp - low) : 0;
}

UBaseType_t uxTaskGetStackHighWaterMark(TaskHandle_t task)
{
    if (task == NULL) task = xTaskGetCurrentTaskHandle();
    if (task == NULL) return 0;
    size_t used_words = (xStandinStackUsedBytes(task) + sizeof(StackType_t) - 1) / sizeof(StackType_t);
    if (used_words >= task->depth) {
        vApplicationStackOverflowHook(task, (char *)(uintptr_t)task->name);
        return 0;
    }
    return (UBaseType_t)(task->depth - used_words);
}

void vTaskDelete(TaskHandle_t task)
{
    TaskHandle_t self = xTaskGetCurrentTaskHandle();
    if (task == NULL || task == self) {
        configASSERT(self != NULL);
        self->running = 0;
        pthread_exit(NULL);      /* stack stays allocated: the thread is still on it */
    }
    pthread_cancel(task->thread);          /* deferred: lands at the task's next blocking call */
    pthread_join(task->thread, NULL);
    task->running = 0;
    free(task->host_stack);
    task->host_stack = NULL;
}

/* ------------------------------------------------------------------ queues */
QueueHandle_t xQueueCreateStatic(UBaseType_t length, UBaseType_t item_size, uint8_t *storage,
                                 StaticQueue_t *q)
{
    pthread_condattr_t ca;
    if (q == NULL || length == 0 || (item_size > 0 && storage == NULL)) return NULL;
    memset(q, 0, sizeof(*q));
    q->storage = storage;
    q->length = length;
    q->item_size = item_size;
    pthread_mutex_init(&q->mu, NULL);
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&q->not_empty, &ca);
    pthread_cond_init(&q->not_full, &ca);
    pthread_condattr_destroy(&ca);
    return q;
}

static void unlock(void *mu) { pthread_mutex_unlock((pthread_mutex_t *)mu); }

/* wait on `cond` until `ready(q)`; 1 when ready, 0 on timeout. Caller holds q->mu. */
static int wait_until(QueueHandle_t q, pthread_cond_t *cond, int (*ready)(QueueHandle_t), TickType_t wait)
{
    struct timespec abs;
    volatile int ok = 1;      /* volatile: pthread_cleanup_push may be setjmp-based */
    if (!ready(q) && wait == 0) return 0;
    if (wait != portMAX_DELAY) deadline(wait, &abs);
    pthread_cleanup_push(unlock, &q->mu);
    while (!ready(q)) {
        if (wait == portMAX_DELAY) {
            pthread_cond_wait(cond, &q->mu);
        } else if (pthread_cond_timedwait(cond, &q->mu, &abs) == ETIMEDOUT && !ready(q)) {
            ok = 0;
            break;
        }
    }
    pthread_cleanup_pop(0);
    return ok;
}

static int has_space(QueueHandle_t q) { return q->count < q->length; }
static int has_item(QueueHandle_t q) { return q->count > 0; }

BaseType_t xQueueSend(QueueHandle_t q, const void *item, TickType_t wait)
{
    configASSERT(q != NULL);
    pthread_mutex_lock(&q->mu);
    if (!wait_until(q, &q->not_full, has_space, wait)) {
        pthread_mutex_unlock(&q->mu);
        return errQUEUE_FULL;
    }
    if (q->item_size > 0)
        memcpy(q->storage + ((q->head + q->count) % q->length) * q->item_size, item, q->item_size);
    q->count++;
    pthread_cond_signal(&q->not_empty);
    pthread_mutex_unlock(&q->mu);
    return pdPASS;
}

BaseType_t xQueueSendFromISR(QueueHandle_t q, const void *item, BaseType_t *higher_priority_woken)
{
    if (higher_priority_woken != NULL) *higher_priority_woken = pdFALSE;
    return xQueueSend(q, item, 0);      /* an ISR never blocks */
}

BaseType_t xQueueReceive(QueueHandle_t q, void *buffer, TickType_t wait)
{
    configASSERT(q != NULL);
    pthread_mutex_lock(&q->mu);
    if (!wait_until(q, &q->not_empty, has_item, wait)) {
        pthread_mutex_unlock(&q->mu);
        return errQUEUE_EMPTY;
    }
    if (q->item_size > 0) memcpy(buffer, q->storage + q->head * q->item_size, q->item_size);
    q->head = (q->head + 1) % q->length;
    q->count--;
    pthread_cond_signal(&q->not_full);
    pthread_mutex_unlock(&q->mu);
    return pdPASS;
}

UBaseType_t uxQueueMessagesWaiting(QueueHandle_t q)
{
    pthread_mutex_lock(&q->mu);
    UBaseType_t n = q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

UBaseType_t uxQueueSpacesAvailable(QueueHandle_t q)
{
    pthread_mutex_lock(&q->mu);
    UBaseType_t n = q->length - q->count;
    pthread_mutex_unlock(&q->mu);
    return n;
}

void vQueueDelete(QueueHandle_t q)
{
    pthread_cond_destroy(&q->not_empty);
    pthread_cond_destroy(&q->not_full);
    pthread_mutex_destroy(&q->mu);
}

/* ------------------------------------------------------------------ semaphores */
SemaphoreHandle_t xSemaphoreCreateBinaryStatic(StaticSemaphore_t *buf)
{
    return xQueueCreateStatic(1, 0, NULL, buf);
}

SemaphoreHandle_t xSemaphoreCreateMutexStatic(StaticSemaphore_t *buf)
{
    SemaphoreHandle_t s = xQueueCreateStatic(1, 0, NULL, buf);
    if (s != NULL) xSemaphoreGive(s);
    return s;
}

SemaphoreHandle_t xSemaphoreCreateCountingStatic(UBaseType_t max, UBaseType_t initial, StaticSemaphore_t *buf)
{
    if (initial > max) return NULL;
    SemaphoreHandle_t s = xQueueCreateStatic(max, 0, NULL, buf);
    for (UBaseType_t i = 0; s != NULL && i < initial; ++i) xSemaphoreGive(s);
    return s;
}
