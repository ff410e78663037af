package portcullis_test.de

import rego.v1

import data.portcullis_test.lib as t

eu_info := {
	t.reason("eu-edpb-2025-02-11", "hosted", "info", ["deepseek-hosted"]),
	t.reason("eu-edpb-chatgpt-taskforce-2023-04-13", "hosted", "info", ["openai"]),
}

test_unverified_federal_notice_warns if {
	t.decide("DE", "private", {}) == t.expect(t.all_ids, eu_info | {
		t.reason("de-bfdi-unverified", "hosted", "warn", ["deepseek-hosted"]),
	})
}

test_berlin_notice_warns_berlin_principals if {
	t.decide("DE-BE", "private", {}) == t.expect(t.all_ids, eu_info | {
		t.reason("de-bfdi-unverified", "hosted", "warn", ["deepseek-hosted"]),
		t.reason("de-be-blnbdi-2025-06-27", "hosted", "warn", ["deepseek-hosted"]),
	})
}
