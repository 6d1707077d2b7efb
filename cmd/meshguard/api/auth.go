package api

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	authnv1 "k8s.io/api/authentication/v1"
	authzv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
)

// In mode kubernetes, cluster RBAC decides through SubjectAccessReview on
// these resource attributes (cluster-scoped, in API group meshguard.io;
// the resources need not exist, RBAC only matches names). Grant them with
// a ClusterRole and ClusterRoleBinding, e.g. for viewers:
//
//	rules:
//	- apiGroups: ["meshguard.io"]
//	  resources: ["detections"]
//	  verbs: ["get"]
//
// and for operators resources ["actions"], verbs ["update"]. meshguard's
// own ServiceAccount needs to create tokenreviews and
// subjectaccessreviews (the built-in ClusterRole system:auth-delegator).
var (
	// ViewerAccess: may read detections, actions, edges and metrics.
	ViewerAccess = authzv1.ResourceAttributes{Group: "meshguard.io", Resource: "detections", Verb: "get"}
	// OperatorAccess: may approve, revoke and extend actions.
	OperatorAccess = authzv1.ResourceAttributes{Group: "meshguard.io", Resource: "actions", Verb: "update"}
)

// Identity is who made a request.
type Identity struct {
	// Name: the tokens file's NAME, the Kubernetes user name, or
	// "anonymous".
	Name string
}

const anonymous = "anonymous"

// errUnauthenticated: no credentials, or ones nobody issued (401).
var errUnauthenticated = errors.New("missing or invalid bearer token")

// authenticator answers, for a bearer token, who it is and whether they
// have a role. An error other than errUnauthenticated means it could not
// tell (the Kubernetes API unreachable): 503, never a guess.
type authenticator interface {
	authorize(ctx context.Context, token string, need Role) (Identity, bool, error)
}

// bearer returns the token of an `Authorization: Bearer TOKEN` header.
func bearer(r *http.Request) (string, bool) {
	h := r.Header.Get("Authorization")
	scheme, token, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") {
		return "", false
	}
	token = strings.TrimSpace(token)
	return token, token != ""
}

// noAuth: every request is an operator's (server.auth.mode none).
type noAuth struct{}

func (noAuth) authorize(context.Context, string, Role) (Identity, bool, error) {
	return Identity{Name: anonymous}, true, nil
}

// tokenAuth checks tokens against the tokens file.
type tokenAuth struct{ entries []tokenEntry }

// authorize compares the token's digest with every entry's in constant
// time, without stopping at a match.
func (a *tokenAuth) authorize(_ context.Context, token string, need Role) (Identity, bool, error) {
	sum := sha256.Sum256([]byte(token))
	match := -1
	for i := range a.entries {
		if subtle.ConstantTimeCompare(sum[:], a.entries[i].sum[:]) == 1 {
			match = i
		}
	}
	if match < 0 || token == "" {
		return Identity{}, false, errUnauthenticated
	}
	e := a.entries[match]
	return Identity{Name: e.name}, e.role >= need, nil
}

// kubeAuth asks the API server: TokenReview for who, SubjectAccessReview
// for whether. Answers are kept for kubeCacheTTL, keyed by the token's
// digest, so that the page's refreshes do not cost two API calls each.
type kubeAuth struct {
	client    kubernetes.Interface
	now       func() time.Time
	audiences []string

	mu    sync.Mutex
	cache map[kubeCacheKey]kubeDecision
}

type kubeCacheKey struct {
	sum  [sha256.Size]byte
	need Role
}

type kubeDecision struct {
	id      Identity
	allowed bool
	authn   bool // the token was valid
	until   time.Time
}

const (
	kubeCacheTTL  = 10 * time.Second
	kubeCacheSize = 4096
	kubeTimeout   = 10 * time.Second
)

func newKubeAuth(cfg *rest.Config, audiences []string) (*kubeAuth, error) {
	if cfg == nil {
		return nil, errors.New("server.auth.mode kubernetes needs a Kubernetes client; set kubernetes.kubeconfig or run in a cluster")
	}
	if err := checkAudiences(audiences); err != nil {
		return nil, err
	}
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return nil, fmt.Errorf("server.auth.mode kubernetes: client for %s: %w", cfg.Host, err)
	}
	return &kubeAuth{client: cs, now: time.Now, audiences: slices.Clone(audiences), cache: map[kubeCacheKey]kubeDecision{}}, nil
}

// hint says, in a 401, what token this server takes.
func (a *kubeAuth) hint() string {
	return fmt.Sprintf(" (server.auth.mode kubernetes takes a token the cluster issued for audience %s, e.g. kubectl create token NAME --audience %s)",
		strings.Join(a.audiences, " or "), a.audiences[0])
}

func (a *kubeAuth) authorize(ctx context.Context, token string, need Role) (Identity, bool, error) {
	key := kubeCacheKey{sha256.Sum256([]byte(token)), need}
	now := a.now()
	a.mu.Lock()
	d, ok := a.cache[key]
	a.mu.Unlock()
	if ok && now.Before(d.until) {
		if !d.authn {
			return Identity{}, false, errUnauthenticated
		}
		return d.id, d.allowed, nil
	}
	d, err := a.decide(ctx, token, need)
	if err != nil {
		return Identity{}, false, err
	}
	d.until = now.Add(kubeCacheTTL)
	a.mu.Lock()
	if len(a.cache) >= kubeCacheSize {
		clear(a.cache)
	}
	a.cache[key] = d
	a.mu.Unlock()
	if !d.authn {
		return Identity{}, false, errUnauthenticated
	}
	return d.id, d.allowed, nil
}

func (a *kubeAuth) decide(ctx context.Context, token string, need Role) (kubeDecision, error) {
	ctx, cancel := context.WithTimeout(ctx, kubeTimeout)
	defer cancel()
	tr, err := a.client.AuthenticationV1().TokenReviews().Create(ctx,
		&authnv1.TokenReview{Spec: authnv1.TokenReviewSpec{Token: token, Audiences: a.audiences}}, metav1.CreateOptions{})
	if err != nil {
		return kubeDecision{}, fmt.Errorf("kubernetes TokenReview: %w", err)
	}
	// An audience-aware API server answers with the audiences the token
	// is valid for among those asked; an empty list means it ignored
	// them and the token is only known to be good for the API server
	// itself. Only a token for one of ours is accepted.
	if !tr.Status.Authenticated || !slices.ContainsFunc(tr.Status.Audiences, func(s string) bool { return slices.Contains(a.audiences, s) }) {
		return kubeDecision{}, nil
	}
	u := tr.Status.User
	id := Identity{Name: u.Username}
	attrs := ViewerAccess
	if need >= RoleOperator {
		attrs = OperatorAccess
	}
	extra := map[string]authzv1.ExtraValue{}
	for k, v := range u.Extra {
		extra[k] = authzv1.ExtraValue(v)
	}
	sar, err := a.client.AuthorizationV1().SubjectAccessReviews().Create(ctx, &authzv1.SubjectAccessReview{
		Spec: authzv1.SubjectAccessReviewSpec{
			ResourceAttributes: &attrs, User: u.Username, UID: u.UID, Groups: u.Groups, Extra: extra,
		},
	}, metav1.CreateOptions{})
	if err != nil {
		return kubeDecision{}, fmt.Errorf("kubernetes SubjectAccessReview for %s: %w", u.Username, err)
	}
	return kubeDecision{id: id, allowed: sar.Status.Allowed, authn: true}, nil
}
