package ingest

import "testing"

func TestPathTemplate(t *testing.T) {
	tests := []struct{ in, want string }{
		// REST ids
		{"/users/42", "/users/{id}"},
		{"/users/42/orders/1001", "/users/{id}/orders/{id}"},
		{"/api/v2/items/9", "/api/v2/items/{id}"},
		{"/status/418", "/status/{id}"},
		{"/users/3f2b8c1e-9d4a-4c7b-8e2f-1a2b3c4d5e6f", "/users/{uuid}"},
		{"/users/3F2B8C1E-9D4A-4C7B-8E2F-1A2B3C4D5E6F/avatar", "/users/{uuid}/avatar"},
		{"/objects/507f1f77bcf86cd799439011", "/objects/{hash}"},
		{"/commits/da39a3ee5e6b4b0d3255bfef95601890afd80709", "/commits/{hash}"},
		{"/reset/eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9", "/reset/{token}"},
		{"/s/Zx7Qp2Lm9Vb4Nc8Kd1Rt5Wy3", "/s/{token}"},
		// the query string is not part of the template
		{"/search?q=1234&page=2", "/search"},
		{"/users/42?expand=true", "/users/{id}"},
		{"/a#frag", "/a"},
		// stays as it is
		{"/", "/"},
		{"", ""},
		{"/healthz", "/healthz"},
		{"/api/v1/orders", "/api/v1/orders"},
		{"/grpc.health.v1.Health/Check", "/grpc.health.v1.Health/Check"},
		{"/reviews.v1.ReviewService/GetReviews", "/reviews.v1.ReviewService/GetReviews"},
		{"/static/js/main.3f2a1b9c.chunk.js", "/static/js/main.3f2a1b9c.chunk.js"},
		{"/favicon.ico", "/favicon.ico"},
		{"/.env", "/.env"},
		{"/.git/config", "/.git/config"},
		{"/admin", "/admin"},
		{"/wp-admin/admin-ajax.php", "/wp-admin/admin-ajax.php"},
		{"/../../etc/passwd", "/../../etc/passwd"},
		{"/cafe/deadbeef", "/cafe/deadbeef"},
		{"/blog/my-long-page-title-2023", "/blog/my-long-page-title-2023"},
		{"/api/getUserAccountSettingsV2", "/api/getUserAccountSettingsV2"},
		{"/users//42/", "/users//{id}/"},
		{"/a%2F1/2", "/a%2F1/{id}"},
	}
	for _, tt := range tests {
		if got := PathTemplate(tt.in); got != tt.want {
			t.Errorf("PathTemplate(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func TestPathTemplateAllocations(t *testing.T) {
	for _, p := range []string{"/api/v1/orders", "/.git/config", "/search?q=42", "/grpc.health.v1.Health/Check"} {
		if n := testing.AllocsPerRun(100, func() { _ = PathTemplate(p) }); n != 0 {
			t.Errorf("PathTemplate(%q) allocates %v times", p, n)
		}
	}
	d := NewDecoder(DecoderConfig{})
	_ = d.pathTemplate("/users/42") // first sight interns it
	if n := testing.AllocsPerRun(100, func() { _ = d.pathTemplate("/users/42") }); n != 0 {
		t.Errorf("interned template allocates %v times", n)
	}
}

func BenchmarkPathTemplate(b *testing.B) {
	paths := []string{
		"/api/v1/orders", "/users/42/orders/1001", "/productpage?u=normal",
		"/reviews.v1.ReviewService/GetReviews", "/users/3f2b8c1e-9d4a-4c7b-8e2f-1a2b3c4d5e6f",
		"/static/js/main.3f2a1b9c.chunk.js", "/.env", "/objects/507f1f77bcf86cd799439011",
	}
	d := NewDecoder(DecoderConfig{})
	b.ReportAllocs()
	n := 0
	for b.Loop() {
		for _, p := range paths {
			_ = d.pathTemplate(p)
		}
		n += len(paths)
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "paths/s")
}
