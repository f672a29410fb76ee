/* FreeRTOS.h (host stand-in): the FreeRTOS kernel types, constants and config macros the PQLR KWS
 * task uses, with the real names, over POSIX threads (see freertos_standin.c). Test-only: the real
 * kernel comes from the firmware's SDK (ESP-IDF, the vendor's CMSIS pack, ...). */
#ifndef FREERTOS_H
#define FREERTOS_H

#include <stdint.h>
#include <stddef.h>

typedef long BaseType_t;
typedef unsigned long UBaseType_t;
typedef uint32_t TickType_t;
typedef uint32_t StackType_t;          /* 32-bit ports (RISC-V, Cortex-M): stack depth is in words */

#define pdFALSE ((BaseType_t)0)
#define pdTRUE ((BaseType_t)1)
#define pdPASS pdTRUE
#define pdFAIL pdFALSE
#define errQUEUE_EMPTY ((BaseType_t)0)
#define errQUEUE_FULL ((BaseType_t)0)

#define portMAX_DELAY ((TickType_t)0xffffffffUL)
#define configTICK_RATE_HZ 1000
#define portTICK_PERIOD_MS ((TickType_t)1000 / configTICK_RATE_HZ)
#define pdMS_TO_TICKS(ms) ((TickType_t)(((uint64_t)(ms) * (uint64_t)configTICK_RATE_HZ) / (uint64_t)1000U))

#define configSTACK_DEPTH_TYPE uint32_t
#define configMINIMAL_STACK_SIZE ((configSTACK_DEPTH_TYPE)128)
#define configMAX_PRIORITIES 8
#define configSUPPORT_STATIC_ALLOCATION 1
#define configSUPPORT_DYNAMIC_ALLOCATION 0
#define tskIDLE_PRIORITY ((UBaseType_t)0)

/* configASSERT: abort with the failed expression, like a port's assert hook */
void vStandinAssertFailed(const char *expr, const char *file, int line);
#define configASSERT(x) do { if (!(x)) vStandinAssertFailed(#x, __FILE__, __LINE__); } while (0)

#endif /* FREERTOS_H */
