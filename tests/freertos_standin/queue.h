/* queue.h (host stand-in): statically allocated FreeRTOS queues (copy-in/copy-out items, FIFO,
 * blocking send and receive with tick timeouts) over a mutex and two condition variables. */
#ifndef QUEUE_H
#define QUEUE_H

#include <pthread.h>
#include "FreeRTOS.h"

typedef struct StaticQueue_s {
    pthread_mutex_t mu;
    pthread_cond_t not_empty, not_full;
    uint8_t *storage;                  /* length * item_size bytes, caller-owned */
    UBaseType_t length, item_size, head, count;
} StaticQueue_t;

typedef StaticQueue_t *QueueHandle_t;

QueueHandle_t xQueueCreateStatic(UBaseType_t length, UBaseType_t item_size, uint8_t *storage,
                                 StaticQueue_t *queue);
BaseType_t xQueueSend(QueueHandle_t q, const void *item, TickType_t wait);   /* to the back */
#define xQueueSendToBack xQueueSend
BaseType_t xQueueSendFromISR(QueueHandle_t q, const void *item, BaseType_t *higher_priority_woken);
BaseType_t xQueueReceive(QueueHandle_t q, void *buffer, TickType_t wait);
UBaseType_t uxQueueMessagesWaiting(QueueHandle_t q);
UBaseType_t uxQueueSpacesAvailable(QueueHandle_t q);
void vQueueDelete(QueueHandle_t q);

#endif /* QUEUE_H */
