/* semphr.h (host stand-in): semaphores as FreeRTOS builds them, queues of zero-size items. */
#ifndef SEMPHR_H
#define SEMPHR_H

#include "queue.h"

typedef QueueHandle_t SemaphoreHandle_t;
typedef StaticQueue_t StaticSemaphore_t;

SemaphoreHandle_t xSemaphoreCreateBinaryStatic(StaticSemaphore_t *buf);          /* starts empty */
SemaphoreHandle_t xSemaphoreCreateMutexStatic(StaticSemaphore_t *buf);           /* starts given */
SemaphoreHandle_t xSemaphoreCreateCountingStatic(UBaseType_t max, UBaseType_t initial,
                                                 StaticSemaphore_t *buf);
#define xSemaphoreTake(s, wait) xQueueReceive((s), NULL, (wait))
#define xSemaphoreGive(s) xQueueSend((s), NULL, 0)
#define vSemaphoreDelete(s) vQueueDelete(s)

#endif /* SEMPHR_H */
