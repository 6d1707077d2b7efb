package testenv_test

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/segmentio/kafka-go"
	"github.com/segmentio/kafka-go/compress"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime/schema"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/kubernetes"

	"github.com/meshguard/meshguard/test/testenv"
)

func TestClickHouseBatchInsertAndSelect(t *testing.T) {
	conn, db := testenv.ClickHouse(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	var version string
	if err := conn.QueryRow(ctx, "SELECT version()").Scan(&version); err != nil {
		t.Fatal(err)
	}
	t.Logf("ClickHouse %s, database %s", version, db)

	if err := conn.Exec(ctx, `CREATE TABLE roundtrip (
		ts DateTime, edge String, code UInt16, bytes UInt64
	) ENGINE = MergeTree() PARTITION BY toYYYYMMDD(ts) ORDER BY (edge, ts)`); err != nil {
		t.Fatal(err)
	}
	// 18.16 needs the explicit column list, or PrepareBatch expects 0 arguments.
	batch, err := conn.PrepareBatch(ctx, "INSERT INTO roundtrip (ts, edge, code, bytes)")
	if err != nil {
		t.Fatal(err)
	}
	const rows = 10000
	base := time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)
	var wantBytes uint64
	for i := 0; i < rows; i++ {
		b := uint64(i * 3)
		wantBytes += b
		if err := batch.Append(base.Add(time.Duration(i)*time.Second), fmt.Sprintf("a -> b%d", i%7), uint16(200+i%5*100), b); err != nil {
			t.Fatal(err)
		}
	}
	if err := batch.Send(); err != nil {
		t.Fatal(err)
	}

	var n, gotBytes uint64
	var edges uint64
	if err := conn.QueryRow(ctx, "SELECT count(), sum(bytes), uniqExact(edge) FROM roundtrip").Scan(&n, &gotBytes, &edges); err != nil {
		t.Fatal(err)
	}
	if n != rows || gotBytes != wantBytes || edges != 7 {
		t.Fatalf("read back count=%d sum(bytes)=%d edges=%d, want %d, %d, 7", n, gotBytes, edges, rows, wantBytes)
	}
	var first time.Time
	var code uint16
	if err := conn.QueryRow(ctx, "SELECT ts, code FROM roundtrip WHERE edge = 'a -> b3' ORDER BY ts LIMIT 1").Scan(&first, &code); err != nil {
		t.Fatal(err)
	}
	if !first.Equal(base.Add(3*time.Second)) || code != 500 {
		t.Fatalf("first row of edge b3: ts=%v code=%d, want %v 500", first, code, base.Add(3*time.Second))
	}
}

func TestKafkaRoundTripApacheKafka(t *testing.T) {
	kafkaRoundTrip(t, testenv.Kafka(t))
}

func TestKafkaRoundTripKfake(t *testing.T) {
	kafkaRoundTrip(t, testenv.Kfake(t))
}

// kafkaRoundTrip produces with every compression codec, consumes in a
// consumer group with explicit commits, and proves the commit held: a new
// member of the group resumes after the committed offsets.
func kafkaRoundTrip(t *testing.T, brokers []string) {
	const partitions = 3
	topic := testenv.NewTopic(t, brokers, partitions)
	group := topic + "-group"
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()

	want := map[string]bool{}
	codecs := []compress.Compression{0, compress.Gzip, compress.Snappy, compress.Lz4, compress.Zstd}
	for _, codec := range codecs {
		produce(ctx, t, brokers, topic, codec, fmt.Sprintf("c%d", codec), 60, want)
	}

	got := consume(ctx, t, brokers, topic, group, len(want))
	for v := range want {
		if !got[v] {
			t.Fatalf("message %q produced but not consumed", v)
		}
	}

	more := map[string]bool{}
	produce(ctx, t, brokers, topic, 0, "after-commit", 9, more)
	again := consume(ctx, t, brokers, topic, group, len(more))
	for v := range again {
		if !more[v] {
			t.Fatalf("group redelivered %q although it was committed", v)
		}
	}
}

func produce(ctx context.Context, t *testing.T, brokers []string, topic string, codec compress.Compression, prefix string, n int, into map[string]bool) {
	t.Helper()
	w := &kafka.Writer{
		Addr:         kafka.TCP(brokers...),
		Topic:        topic,
		Balancer:     &kafka.RoundRobin{},
		Compression:  codec,
		RequiredAcks: kafka.RequireAll,
		BatchSize:    n,
		BatchTimeout: 10 * time.Millisecond,
	}
	defer w.Close()
	msgs := make([]kafka.Message, n)
	for i := range msgs {
		v := fmt.Sprintf("%s-%03d", prefix, i)
		msgs[i] = kafka.Message{Key: []byte(v), Value: []byte(v)}
		into[v] = true
	}
	if err := w.WriteMessages(ctx, msgs...); err != nil {
		t.Fatalf("produce %s to %s: %v", prefix, topic, err)
	}
}

// consume reads n messages in group, committing each batch after it was
// "processed" (recorded), and leaves the group cleanly.
func consume(ctx context.Context, t *testing.T, brokers []string, topic, group string, n int) map[string]bool {
	t.Helper()
	r := kafka.NewReader(kafka.ReaderConfig{
		Brokers:        brokers,
		GroupID:        group,
		Topic:          topic,
		StartOffset:    kafka.FirstOffset,
		MaxWait:        100 * time.Millisecond,
		CommitInterval: 0, // synchronous commits: the test checks them
	})
	defer r.Close()
	got := map[string]bool{}
	var pending []kafka.Message
	for len(got) < n {
		m, err := r.FetchMessage(ctx)
		if err != nil {
			t.Fatalf("fetch from %s after %d of %d messages: %v", topic, len(got), n, err)
		}
		if got[string(m.Value)] {
			t.Fatalf("message %q delivered twice", m.Value)
		}
		got[string(m.Value)] = true
		pending = append(pending, m)
		if len(pending) == 25 || len(got) == n {
			if err := r.CommitMessages(ctx, pending...); err != nil {
				t.Fatalf("commit: %v", err)
			}
			pending = pending[:0]
		}
	}
	// Nothing more is waiting: a short fetch must time out, not deliver.
	short, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	if m, err := r.FetchMessage(short); err == nil {
		t.Fatalf("unexpected extra message %q", m.Value)
	} else if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("fetch: %v", err)
	}
	return got
}

var authorizationPolicies = schema.GroupVersionResource{Group: "security.istio.io", Version: "v1", Resource: "authorizationpolicies"}

func TestKubeAPIServerAuthorizationPolicy(t *testing.T) {
	cfg := testenv.KubeConfig(t)
	cs := kubernetes.NewForConfigOrDie(cfg)
	dyn := dynamic.NewForConfigOrDie(cfg)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()

	ns := fmt.Sprintf("test-%d", time.Now().UnixNano())
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = cs.CoreV1().Namespaces().Delete(context.Background(), ns, metav1.DeleteOptions{})
	})
	policies := dyn.Resource(authorizationPolicies).Namespace(ns)

	deny := policy("deny-cart-to-payments", map[string]any{
		"selector": map[string]any{"matchLabels": map[string]any{"app": "payments"}},
		"action":   "DENY",
		"rules": []any{map[string]any{
			"from": []any{map[string]any{"source": map[string]any{
				"principals": []any{"cluster.local/ns/shop/sa/cart"},
			}}},
		}},
	})
	if _, err := policies.Create(ctx, deny, metav1.CreateOptions{}); err != nil {
		t.Fatalf("create: %v", err)
	}
	stored, err := policies.Get(ctx, "deny-cart-to-payments", metav1.GetOptions{})
	if err != nil {
		t.Fatalf("get: %v", err)
	}
	action, _, _ := unstructured.NestedString(stored.Object, "spec", "action")
	rules, _, _ := unstructured.NestedSlice(stored.Object, "spec", "rules")
	if action != "DENY" || len(rules) != 1 {
		t.Fatalf("stored policy: action=%q rules=%v", action, rules)
	}
	principals, _, _ := unstructured.NestedStringSlice(rules[0].(map[string]any)["from"].([]any)[0].(map[string]any), "source", "principals")
	if len(principals) != 1 || principals[0] != "cluster.local/ns/shop/sa/cart" {
		t.Fatalf("stored principals = %v", principals)
	}

	// The CRD's CEL rules forbid serviceAccounts together with principals.
	invalid := policy("invalid", map[string]any{
		"action": "DENY",
		"rules": []any{map[string]any{
			"from": []any{map[string]any{"source": map[string]any{
				"principals":      []any{"cluster.local/ns/shop/sa/cart"},
				"serviceAccounts": []any{"shop/cart"},
			}}},
		}},
	})
	_, err = policies.Create(ctx, invalid, metav1.CreateOptions{})
	if !apierrors.IsInvalid(err) {
		t.Fatalf("invalid policy: got err %v, want the CRD validation to reject it", err)
	}
	if !strings.Contains(err.Error(), "Cannot set serviceAccounts with namespaces or principals") {
		t.Fatalf("rejection does not name the offending field: %v", err)
	}

	if err := policies.Delete(ctx, "deny-cart-to-payments", metav1.DeleteOptions{}); err != nil {
		t.Fatalf("delete: %v", err)
	}
	if _, err := policies.Get(ctx, "deny-cart-to-payments", metav1.GetOptions{}); !apierrors.IsNotFound(err) {
		t.Fatalf("get after delete: %v, want not found", err)
	}
	list, err := policies.List(ctx, metav1.ListOptions{})
	if err != nil || len(list.Items) != 0 {
		names := []string{}
		if list != nil {
			for _, it := range list.Items {
				names = append(names, it.GetName())
			}
		}
		sort.Strings(names)
		t.Fatalf("policies left: %v (err %v)", names, err)
	}
}

func policy(name string, spec map[string]any) *unstructured.Unstructured {
	return &unstructured.Unstructured{Object: map[string]any{
		"apiVersion": "security.istio.io/v1",
		"kind":       "AuthorizationPolicy",
		"metadata":   map[string]any{"name": name},
		"spec":       spec,
	}}
}
