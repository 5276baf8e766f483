/* A seccomp stand-in for unit tests of modules whose threads install a filter: the test
 * process keeps its freedom (cmocka, fakes and sanitizers make calls no filter lists). */
#include "ember/seccomp.h"

void seccomp_install_thread(enum seccomp_kind kind)
{
	(void)kind;
}
