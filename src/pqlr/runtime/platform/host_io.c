/* host_io.c: pqlr_platform.h for a native host build (stdio files, no instruction counter). */
#include <stdio.h>
#include <stdlib.h>

#include "pqlr_platform.h"

#define HOST_MAX_FILES 4
static FILE *g_files[HOST_MAX_FILES];

int pqlr_file_open(const char *name, int for_write)
{
    for (int fd = 0; fd < HOST_MAX_FILES; fd++) {
        if (g_files[fd] == NULL) {
            g_files[fd] = fopen(name, for_write ? "wb" : "rb");
            return g_files[fd] ? fd : -1;
        }
    }
    return -1;
}

size_t pqlr_file_read(int fd, void *buf, size_t len) { return fread(buf, 1, len, g_files[fd]); }

size_t pqlr_file_write(int fd, const void *buf, size_t len) { return fwrite(buf, 1, len, g_files[fd]); }

void pqlr_file_close(int fd)
{
    fclose(g_files[fd]);
    g_files[fd] = NULL;
}

void pqlr_console(const char *msg) { fputs(msg, stderr); }

void pqlr_exit(int code) { exit(code); }

uint8_t *pqlr_stack_bottom(void) { return NULL; }
uint8_t *pqlr_stack_top(void) { return NULL; }

uint64_t pqlr_counter_read(void) { return 0; }
