/* API route for the serial console (PUT /serial, Firecracker's SerialConfig): where the
 * guest's serial output goes (a file instead of stdout; input stays on stdin) and how
 * many bytes of it per refill time (the rest dropped, counted in uart metrics). */
#include "internal.h"

#include "json.h"

static const struct jfield serial_fields[] = {
	JF_STR("serial_out_path", J_OPTIONAL),
	JF_OBJ("rate_limiter", J_OPTIONAL, &api_bucket),
	JF_END,
};
static const struct jschema serial = { "SerialConfig", serial_fields };

void api_put_serial(struct api *api, const struct api_call *call, struct api_resp *r)
{
	const char *path = json_get_str(call->body, "serial_out_path");
	struct token_bucket_config limit;

	if (!api_body_ok(call, &serial, r) || !api_pre_boot(api, r) ||
		!api_bucket_of(call->body, "rate_limiter", "Serial device error", &limit, r) ||
		!api_set_str(&api->cfg.console_log, path, r))
		return;
	api->cfg.console_log_only = path != NULL;
	api->cfg.console_limit = limit;
	api->boot_path = true;
	resp_ok(r);
}
