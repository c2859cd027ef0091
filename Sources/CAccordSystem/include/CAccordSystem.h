#ifndef ACCORD_CACCORDSYSTEM_H
#define ACCORD_CACCORDSYSTEM_H
/* Gives the C heap's free memory back to the system where the C library can (glibc's
   malloc_trim); returns whether any was. A no-op elsewhere. */
int accord_release_free_memory(void);
#endif
