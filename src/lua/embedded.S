/* The Lua side of the ember module (lua/ember/), built into the binary. */
#undef linux /* a predefined macro of the C preprocessor, and one of our file names */
	.macro embed name
	.global ember_lua_\name, ember_lua_\name\()_end
ember_lua_\name:
	.incbin "lua/ember/\name\().lua"
ember_lua_\name\()_end:
	.byte 0
	.endm

	.section .rodata
	embed init
	embed policy
	embed linux
	embed repl
	embed client
	.section .note.GNU-stack, "", @progbits
