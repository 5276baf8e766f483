/* Firecracker's static CPU templates as template JSON (configs/cpu-templates/), built in. */
	.include "src/util/embed.inc"
	.macro embed name
	embed_file ember_cpu_\name, "configs/cpu-templates/\name\().json"
	.endm

	.section .rodata
	embed C3
	embed T2
	embed T2S
	embed T2CL
	embed T2A
	.section .note.GNU-stack, "", @progbits
