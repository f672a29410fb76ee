/* standin_selftest.c: checks that the FreeRTOS stand-in keeps the kernel's semantics the KWS task
 * relies on: FIFO copy-in/copy-out queues, blocking with tick timeouts, wake-up on send, semaphores,
 * and the painted-stack measurement. Prints "ok" or the failed checks; exit status = failures. */
#include <stdio.h>
#include <string.h>
#include "FreeRTOS.h"
#include "queue.h"
#include "semphr.h"
#include "task.h"

static int failures;
#define CHECK(x) do { if (!(x)) { printf("FAILED line %d: %s\n", __LINE__, #x); ++failures; } } while (0)

static StaticQueue_t qbuf;
static uint8_t qstore[3 * sizeof(uint32_t)];
static QueueHandle_t q;
static StaticTask_t tcb_a, tcb_b;
static StackType_t stack_a[4096], stack_b[8192];   /* roomy: the test also runs under ASan */
static StaticSemaphore_t sem_buf, mutex_buf, count_buf, done_buf;
static SemaphoreHandle_t done;
static volatile uint32_t received;
static volatile TickType_t received_at;

static void consumer(void *arg)
{
    (void)arg;
    uint32_t v = 0;
    if (xQueueReceive(q, &v, portMAX_DELAY) == pdPASS) received = v;   /* blocks until main sends */
    received_at = xTaskGetTickCount();
    xSemaphoreGive(done);
    for (;;) vTaskDelay(1000);                   /* deleted by main while blocked */
}

static void deep(void *arg)
{
    volatile uint8_t big[4096];                  /* 4 KB of locals, touched */
    for (size_t i = 0; i < sizeof(big); ++i) big[i] = (uint8_t)i;
    (void)arg;
    xSemaphoreGive(done);
    vTaskDelete(NULL);
}

int main(void)
{
    uint32_t v;
    q = xQueueCreateStatic(3, sizeof(uint32_t), qstore, &qbuf);
    CHECK(q != NULL);
    CHECK(xQueueCreateStatic(0, 4, qstore, &qbuf) == NULL);

    /* FIFO across the wrap, full and empty with and without timeouts */
    for (v = 1; v <= 3; ++v) CHECK(xQueueSend(q, &v, 0) == pdPASS);
    CHECK(uxQueueMessagesWaiting(q) == 3 && uxQueueSpacesAvailable(q) == 0);
    v = 4;
    CHECK(xQueueSend(q, &v, 0) == errQUEUE_FULL);
    TickType_t t = xTaskGetTickCount();
    CHECK(xQueueSend(q, &v, pdMS_TO_TICKS(30)) == errQUEUE_FULL);
    CHECK(xTaskGetTickCount() - t >= 30);
    CHECK(xQueueReceive(q, &v, 0) == pdPASS && v == 1);
    v = 4;
    CHECK(xQueueSend(q, &v, 0) == pdPASS);
    for (uint32_t want = 2; want <= 4; ++want) CHECK(xQueueReceive(q, &v, 0) == pdPASS && v == want);
    t = xTaskGetTickCount();
    CHECK(xQueueReceive(q, &v, pdMS_TO_TICKS(30)) == errQUEUE_EMPTY);
    CHECK(xTaskGetTickCount() - t >= 30);

    /* a task blocked forever on receive wakes when another sends */
    done = xSemaphoreCreateBinaryStatic(&done_buf);
    CHECK(xSemaphoreTake(done, 0) == pdFAIL);                        /* binary: starts empty */
    TaskHandle_t a = xTaskCreateStatic(consumer, "consumer", 4096, NULL, 2, stack_a, &tcb_a);
    CHECK(a != NULL);
    vTaskDelay(pdMS_TO_TICKS(40));
    CHECK(received == 0);                                            /* still blocked */
    v = 77;
    TickType_t sent_at = xTaskGetTickCount();
    CHECK(xQueueSend(q, &v, portMAX_DELAY) == pdPASS);
    CHECK(xSemaphoreTake(done, pdMS_TO_TICKS(5000)) == pdPASS);
    CHECK(received == 77 && received_at >= sent_at);
    CHECK(uxTaskGetStackHighWaterMark(a) > 0);
    vTaskDelete(a);

    /* semaphores */
    SemaphoreHandle_t m = xSemaphoreCreateMutexStatic(&mutex_buf);
    CHECK(xSemaphoreTake(m, 0) == pdPASS && xSemaphoreTake(m, 0) == pdFAIL);
    CHECK(xSemaphoreGive(m) == pdPASS && xSemaphoreGive(m) == pdFAIL);     /* binary: one count max */
    SemaphoreHandle_t c = xSemaphoreCreateCountingStatic(5, 2, &count_buf);
    CHECK(uxQueueMessagesWaiting(c) == 2);
    CHECK(xSemaphoreCreateCountingStatic(1, 2, &sem_buf) == NULL);

    /* painted stack: a task touching 4 KB of locals reports at least that much used */
    TaskHandle_t b = xTaskCreateStatic(deep, "deep", 8192, NULL, 1, stack_b, &tcb_b);
    CHECK(b != NULL && xSemaphoreTake(done, pdMS_TO_TICKS(5000)) == pdPASS);
    vTaskDelay(pdMS_TO_TICKS(10));
    size_t used = xStandinStackUsedBytes(b);
    CHECK(used >= 4096 && used < 8192 * sizeof(StackType_t));
    CHECK(uxTaskGetStackHighWaterMark(b) == 8192 - (used + 3) / 4);
    CHECK(xTaskCreateStatic(deep, "bad", 0, NULL, 1, stack_b, &tcb_b) == NULL);

    if (failures == 0) printf("ok\n");
    return failures;
}
