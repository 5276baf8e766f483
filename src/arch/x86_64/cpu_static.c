/* Firecracker's static CPU templates, built in from configs/cpu-templates/ (cpu_static.S). */
#include "ember/cpu_template.h"

extern const char ember_cpu_C3[], ember_cpu_T2[], ember_cpu_T2S[], ember_cpu_T2CL[],
	ember_cpu_T2A[];

const char *cpu_static_json(enum cpu_static_template t)
{
	switch (t) {
	case CPU_STATIC_C3:
		return ember_cpu_C3;
	case CPU_STATIC_T2:
		return ember_cpu_T2;
	case CPU_STATIC_T2S:
		return ember_cpu_T2S;
	case CPU_STATIC_T2CL:
		return ember_cpu_T2CL;
	case CPU_STATIC_T2A:
		return ember_cpu_T2A;
	case CPU_STATIC_NONE:
		break;
	}
	return NULL;
}
