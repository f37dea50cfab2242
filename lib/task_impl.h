/* What lib/task.c and lib/task_svc.c share inside libuksim_task. */
#ifndef UKSIM_TASK_IMPL_H
#define UKSIM_TASK_IMPL_H

#include <stdint.h>

/* task.c: the calling task thread waits in `state` (a task call: its
 * registers go into the region and the scheduler runs). */
void task__block(int32_t state);

/* task_svc.c: service calls. */
/* Whether a call is out (some handle SENT): the scheduler then watches
 * TASK_SVC_FD. */
int task__svc_waiting(void);
/* Takes every answer TASK_SVC_FD has now, without waiting: how many. */
int task__svc_take(void);
/* After task_adopt: sends again every call the task had out, with its
 * seq, to this node's migration server. */
void task__svc_resend(void);

#endif
