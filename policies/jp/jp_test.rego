package portcullis_test.jp

import rego.v1

import data.portcullis_test.lib as t

test_national_guidance_warns if {
	t.decide("JP", "government", {}) == t.expect(t.all_ids, {
		t.reason("jp-gov-2025-02-06", "hosted", "warn", ["deepseek-hosted"]),
	})
}

test_mie_prefecture_bans if {
	t.decide("JP-24", "government", {}) == t.expect(["azure-eu", "deepseek-self", "openai"], {
		t.reason("jp-24-mie-2025-02-07", "hosted", "deny", ["deepseek-hosted"]),
		t.reason("jp-gov-2025-02-06", "hosted", "warn", ["deepseek-hosted"]),
	})
}

test_tottori_estimated_date if {
	t.decide("JP-31", "government", {"now": t.at("2025-02-01")}) == t.expect(["azure-eu", "deepseek-self", "openai"], {
		t.reason("jp-31-tottori-2025-02", "hosted", "deny", ["deepseek-hosted"]),
	})
}
