/* Firecracker's static CPU templates as template JSON (data/cpu_templates/), built in. */
	.macro embed name
	.global ember_cpu_\name, ember_cpu_\name\()_end
ember_cpu_\name:
	.incbin "data/cpu_templates/\name\().json"
ember_cpu_\name\()_end:
	.byte 0
	.endm

	.section .rodata
	embed C3
	embed T2
	embed T2S
	embed T2CL
	embed T2A
	.section .note.GNU-stack, "", @progbits
