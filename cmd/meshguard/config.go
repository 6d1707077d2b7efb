package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/meshguard/meshguard/alert"
	"github.com/meshguard/meshguard/cmd/meshguard/api"
	"github.com/meshguard/meshguard/detect"
	"github.com/meshguard/meshguard/identity"
	"github.com/meshguard/meshguard/ingest"
	"github.com/meshguard/meshguard/respond"
	"github.com/meshguard/meshguard/storage"
)

// Config is meshguard's one config file. Every key can be overridden by an
// environment variable: MESHGUARD_ + the key path in upper case with dots
// as underscores (kafka.brokers -> MESHGUARD_KAFKA_BROKERS; lists are
// comma-separated).
type Config struct {
	Kafka      ingest.KafkaConfig       `yaml:"kafka"`
	Ingest     ingest.IngestConfig      `yaml:"ingest"`
	ClickHouse storage.ClickHouseConfig `yaml:"clickhouse"`
	Detect     detect.Config            `yaml:"detect"`
	Log        LogConfig                `yaml:"log"`
	Respond    respond.Config           `yaml:"respond"`
	Kubernetes respond.KubernetesConfig `yaml:"kubernetes"`
	Identity   identity.Config          `yaml:"identity"`
	Alert      alert.Config             `yaml:"alert"`
	Server     api.Config               `yaml:"server"`
}

// LogConfig is the `log:` section.
type LogConfig struct {
	// Level: debug, info, warn or error.
	Level string `yaml:"level"`
	// Format: text or json.
	Format string `yaml:"format"`
}

// DefaultConfig is what an empty file means.
func DefaultConfig() Config {
	return Config{
		Kafka:      ingest.DefaultKafkaConfig(),
		Ingest:     ingest.DefaultIngestConfig(),
		ClickHouse: storage.DefaultClickHouseConfig(),
		Detect:     detect.DefaultConfig(),
		Log:        LogConfig{Level: "info", Format: "text"},
		Respond:    respond.DefaultConfig(),
		Identity:   identity.DefaultConfig(),
		Alert:      alert.DefaultConfig(),
		Server:     api.DefaultConfig(),
	}
}

// Validate reports every problem in the config at once.
func (c *Config) Validate() error {
	var errs []error
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		errs = append(errs, fmt.Errorf("log.level: %q; use debug, info, warn or error", c.Log.Level))
	}
	if c.Log.Format != "text" && c.Log.Format != "json" {
		errs = append(errs, fmt.Errorf("log.format: %q; use text or json", c.Log.Format))
	}
	return errors.Join(c.Kafka.Validate(), c.Ingest.Validate(), c.ClickHouse.Validate(), c.Detect.Validate(), c.Respond.Validate(), c.Kubernetes.Validate(), c.Identity.Validate(), c.Alert.Validate(), errors.Join(errs...))
}

// LoadServeConfig is LoadConfig plus what only serve needs: the HTTP
// server's section (listener, TLS, authentication), which the other
// commands never use and so must not require.
func LoadServeConfig(path string, env []string) (Config, error) {
	cfg, err := LoadConfig(path, env)
	if err != nil {
		return cfg, err
	}
	if err := cfg.Server.Validate(); err != nil {
		where := "config"
		if path != "" {
			where = "config " + path
		}
		return cfg, fmt.Errorf("%s is not valid for serve:\n%w", where, err)
	}
	return cfg, nil
}

// LoadConfig reads path ("" for none) over the defaults, strictly (an
// unknown key is an error, not a silent typo), applies MESHGUARD_*
// overrides from env and validates.
func LoadConfig(path string, env []string) (Config, error) {
	cfg := DefaultConfig()
	if path != "" {
		data, err := os.ReadFile(path)
		if err != nil {
			return cfg, fmt.Errorf("config: %w", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(data))
		dec.KnownFields(true)
		if err := dec.Decode(&cfg); err != nil && !errors.Is(err, io.EOF) {
			return cfg, fmt.Errorf("config %s: %w", path, err)
		}
	}
	if err := applyEnv(&cfg, env); err != nil {
		return cfg, err
	}
	if err := cfg.Validate(); err != nil {
		where := "config"
		if path != "" {
			where = "config " + path
		}
		return cfg, fmt.Errorf("%s is not valid:\n%w", where, err)
	}
	return cfg, nil
}

const envPrefix = "MESHGUARD_"

// applyEnv sets every config key named by a MESHGUARD_* variable. An
// unknown MESHGUARD_ variable is an error: it is almost always a typo that
// would otherwise be ignored in production.
func applyEnv(cfg *Config, env []string) error {
	fields := map[string]field{}
	collectFields(reflect.ValueOf(cfg).Elem(), "", fields)
	var errs []error
	for _, kv := range env {
		name, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(name, envPrefix) || ignoredEnv(name) {
			continue
		}
		key := strings.ToLower(strings.TrimPrefix(name, envPrefix))
		if alias, ok := envAliases[name]; ok {
			key = strings.ReplaceAll(alias, ".", "_")
		}
		f, ok := fields[key]
		if !ok {
			errs = append(errs, fmt.Errorf("%s: no such config key; keys are listed by `meshguard config keys`", name))
			continue
		}
		if err := setFromString(f.v, value); err != nil {
			errs = append(errs, fmt.Errorf("%s (%s): %w", name, f.key, err))
		}
	}
	return errors.Join(errs...)
}

// envAliases are shorter names for keys whose MESHGUARD_* name is long
// and that deployments set from Secrets. When both an alias and the key's
// own variable are set, the later one in the environment wins.
var envAliases = map[string]string{
	"MESHGUARD_SLACK_WEBHOOK_URL":    "alert.slack.webhook_url",
	"MESHGUARD_SLACK_TOKEN":          "alert.slack.token",
	"MESHGUARD_SLACK_SIGNING_SECRET": "alert.slack.signing_secret",
}

// ignoredEnv: variables with the prefix that are not config keys (test
// harness, tool paths).
//
// Kubernetes' service links are among them: a Service named meshguard puts
// MESHGUARD_SERVICE_HOST, MESHGUARD_PORT_8080_TCP and the like into every
// pod of its namespace, and a pod must not fail on them.
func ignoredEnv(name string) bool {
	if name == "MESHGUARD_PORT" {
		return true
	}
	for _, p := range []string{"MESHGUARD_TEST_", "MESHGUARD_INFRA_", "MESHGUARD_CACHE_", "MESHGUARD_SERVICE_", "MESHGUARD_PORT_"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	return false
}

// field is one leaf config key: its dotted name and where it is stored.
type field struct {
	key string // "kafka.topics.logs"
	v   reflect.Value
}

// collectFields maps env-style keys ("kafka_topics_logs") to settable
// leaf fields, following yaml tags.
func collectFields(v reflect.Value, prefix string, out map[string]field) {
	t := v.Type()
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		tag := strings.Split(sf.Tag.Get("yaml"), ",")[0]
		if tag == "" || tag == "-" || !sf.IsExported() {
			continue
		}
		key := prefix + tag
		fv := v.Field(i)
		if fv.Kind() == reflect.Struct && fv.Type() != durationType {
			collectFields(fv, key+".", out)
			continue
		}
		out[strings.ReplaceAll(key, ".", "_")] = field{key: key, v: fv}
	}
}

var durationType = reflect.TypeOf(time.Duration(0))

func setFromString(f reflect.Value, s string) error {
	if f.Type() == durationType {
		d, err := time.ParseDuration(s)
		if err != nil {
			return fmt.Errorf("%q is not a duration (e.g. 10s, 1h)", s)
		}
		f.SetInt(int64(d))
		return nil
	}
	switch f.Kind() {
	case reflect.String:
		f.SetString(s)
	case reflect.Bool:
		b, err := strconv.ParseBool(s)
		if err != nil {
			return fmt.Errorf("%q is not true or false", s)
		}
		f.SetBool(b)
	case reflect.Int, reflect.Int32, reflect.Int64:
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a whole number", s)
		}
		f.SetInt(n)
	case reflect.Uint, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		n, err := strconv.ParseUint(s, 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not a non-negative whole number", s)
		}
		f.SetUint(n)
	case reflect.Float64:
		x, err := strconv.ParseFloat(s, 64)
		if err != nil {
			return fmt.Errorf("%q is not a number", s)
		}
		f.SetFloat(x)
	case reflect.Slice:
		if f.Type().Elem().Kind() != reflect.String {
			return fmt.Errorf("lists of %s cannot be set from the environment", f.Type().Elem())
		}
		var items []string
		for _, p := range strings.Split(s, ",") {
			if p = strings.TrimSpace(p); p != "" {
				items = append(items, p)
			}
		}
		f.Set(reflect.ValueOf(items))
	default:
		return fmt.Errorf("a %s cannot be set from the environment", f.Type())
	}
	return nil
}

// configKeys lists every key with its environment variable and default,
// sorted, for `meshguard config keys`.
func configKeys() []string {
	cfg := DefaultConfig()
	fields := map[string]field{}
	collectFields(reflect.ValueOf(&cfg).Elem(), "", fields)
	lines := make([]string, 0, len(fields))
	for env, f := range fields {
		def := f.v.Interface()
		switch d := def.(type) {
		case time.Duration:
			def = d.String()
		case []string:
			def = strings.Join(d, ",")
		}
		lines = append(lines, fmt.Sprintf("%-34s %-42s %v", f.key, envPrefix+strings.ToUpper(env), def))
	}
	for alias, key := range envAliases {
		lines = append(lines, fmt.Sprintf("%-34s %-42s %s", key, alias, "(alias)"))
	}
	sort.Strings(lines)
	return lines
}
