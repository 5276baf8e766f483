/* The Lua side of the ember module (lua/ember/), built into the binary. */
#undef linux /* a predefined macro of the C preprocessor, and one of our file names */
	.include "src/util/embed.inc"
	.macro embed name
	embed_file ember_lua_\name, "lua/ember/\name\().lua"
	.endm

	.section .rodata
	embed init
	embed policy
	embed linux
	embed repl
	embed client
	.section .note.GNU-stack, "", @progbits
