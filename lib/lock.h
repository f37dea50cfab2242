/* libuksim internal: the one process-wide lock that makes the library safe
 * for threads (design in lock.c). */
#ifndef UKSIM_LIB_LOCK_H
#define UKSIM_LIB_LOCK_H

/* Takes the library's lock; a thread holding it may take it again (it is
 * recursive) and must release it as many times. */
void uk__lock(void);
void uk__unlock(void);

#endif /* UKSIM_LIB_LOCK_H */
