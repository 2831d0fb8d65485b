/* The adjtimex reading: it works here and reports sane values. */
#include "snowflake.h"
#include "check.h"

int main(void)
{
	sf_discipline d;

	CHECK_RC(sf_discipline_read(&d), SF_OK, "adjtimex can be read without privileges to change it");
	CHECK(d.max_error_us >= 0 && d.est_error_us >= 0, "errors are non-negative (max %lld us)",
	      (long long)d.max_error_us);
	CHECK(d.state >= 0 && d.state <= 5, "state is one of TIME_OK..TIME_ERROR (%d)", d.state);
	CHECK_RC(sf_discipline_read(NULL), SF_E_INVALID, "NULL is refused");
	printf("# synchronised=%d max_error_us=%lld state=%d\n", d.synchronised,
	       (long long)d.max_error_us, d.state);
	return CHECK_DONE();
}
