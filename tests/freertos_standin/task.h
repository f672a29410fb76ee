/* task.h (host stand-in): static task creation, delay, delete, tick count, stack high-water mark and
 * critical sections, each a POSIX thread primitive underneath (see freertos_standin.c).
 *
 * Honest differences from the kernel: scheduling is the host OS's (priorities are recorded, not
 * enforced) and a task runs on a host-sized thread stack, not on the caller's buffer; the stand-in
 * paints that stack and measures what the task uses below its entry point, so
 * uxTaskGetStackHighWaterMark() reports (declared depth - used) words, and 0 once the task used more
 * than it declared (then vApplicationStackOverflowHook() is called, as configCHECK_FOR_STACK_OVERFLOW
 * would). Host numbers are x86-64 (8-byte pointers) and meaningful only without sanitizers. */
#ifndef TASK_H
#define TASK_H

#include <pthread.h>
#include "FreeRTOS.h"

typedef void (*TaskFunction_t)(void *);

typedef struct StaticTask_s {
    pthread_t thread;
    TaskFunction_t fn;
    void *params;
    const char *name;
    UBaseType_t priority;
    configSTACK_DEPTH_TYPE depth;      /* declared stack depth, words */
    unsigned char *host_stack;         /* the painted host thread stack */
    size_t host_stack_bytes;
    uintptr_t entry_sp;                /* stack address when the task function was entered */
    volatile int running;
} StaticTask_t;

typedef StaticTask_t *TaskHandle_t;

TaskHandle_t xTaskCreateStatic(TaskFunction_t fn, const char *name, const configSTACK_DEPTH_TYPE depth,
                               void *params, UBaseType_t priority, StackType_t *stack, StaticTask_t *tcb);
void vTaskDelete(TaskHandle_t task);             /* NULL: the calling task */
void vTaskDelay(TickType_t ticks);
TickType_t xTaskGetTickCount(void);
TaskHandle_t xTaskGetCurrentTaskHandle(void);
UBaseType_t uxTaskGetStackHighWaterMark(TaskHandle_t task);
void vApplicationStackOverflowHook(TaskHandle_t task, char *name);   /* weak default: abort */

void vStandinEnterCritical(void);
void vStandinExitCritical(void);
#define taskENTER_CRITICAL() vStandinEnterCritical()
#define taskEXIT_CRITICAL() vStandinExitCritical()

/* stand-in only: bytes of host stack the task has used below its entry point so far */
size_t xStandinStackUsedBytes(TaskHandle_t task);

#endif /* TASK_H */
