package testenv

import (
	"context"
	"fmt"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
)

// Workload is a Deployment, its ReplicaSet and its pods, created as the
// controllers would (the test apiserver runs none): owner references
// point pod -> ReplicaSet -> Deployment, and the pods' IPs are set through
// the status subresource, as the kubelet does.
type Workload struct {
	NS, Name, SA string
	Labels       map[string]string
	IPs          []string
}

// CreateWorkload creates w in its namespace (which must exist) and
// returns its pods' names.
func CreateWorkload(t testing.TB, cs kubernetes.Interface, w Workload) []string {
	t.Helper()
	ctx := context.Background()
	yes := true
	if _, err := cs.CoreV1().ServiceAccounts(w.NS).Create(ctx, &corev1.ServiceAccount{ObjectMeta: metav1.ObjectMeta{Name: w.SA}}, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatal(err)
	}
	tmpl := corev1.PodTemplateSpec{
		ObjectMeta: metav1.ObjectMeta{Labels: w.Labels},
		Spec:       corev1.PodSpec{ServiceAccountName: w.SA, Containers: []corev1.Container{{Name: "app", Image: "example.invalid/app:1"}}},
	}
	dep, err := cs.AppsV1().Deployments(w.NS).Create(ctx, &appsv1.Deployment{
		ObjectMeta: metav1.ObjectMeta{Name: w.Name, Labels: w.Labels},
		Spec:       appsv1.DeploymentSpec{Selector: &metav1.LabelSelector{MatchLabels: w.Labels}, Template: tmpl},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	hash := "5f7c9d8b4"
	podLabels := map[string]string{"pod-template-hash": hash}
	for k, v := range w.Labels {
		podLabels[k] = v
	}
	rs, err := cs.AppsV1().ReplicaSets(w.NS).Create(ctx, &appsv1.ReplicaSet{
		ObjectMeta: metav1.ObjectMeta{Name: w.Name + "-" + hash, Labels: podLabels, OwnerReferences: []metav1.OwnerReference{
			{APIVersion: "apps/v1", Kind: "Deployment", Name: dep.Name, UID: dep.UID, Controller: &yes}}},
		Spec: appsv1.ReplicaSetSpec{Selector: &metav1.LabelSelector{MatchLabels: podLabels},
			Template: corev1.PodTemplateSpec{ObjectMeta: metav1.ObjectMeta{Labels: podLabels}, Spec: tmpl.Spec}},
	}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for i, ip := range w.IPs {
		pod, err := cs.CoreV1().Pods(w.NS).Create(ctx, &corev1.Pod{
			ObjectMeta: metav1.ObjectMeta{Name: fmt.Sprintf("%s-%d", rs.Name, i), Labels: podLabels, OwnerReferences: []metav1.OwnerReference{
				{APIVersion: "apps/v1", Kind: "ReplicaSet", Name: rs.Name, UID: rs.UID, Controller: &yes}}},
			Spec: tmpl.Spec,
		}, metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		SetPodIP(t, cs, pod, ip)
		names = append(names, pod.Name)
	}
	return names
}

// SetPodIP gives pod a running status with ip, as the kubelet would.
func SetPodIP(t testing.TB, cs kubernetes.Interface, pod *corev1.Pod, ip string) {
	t.Helper()
	pod = pod.DeepCopy()
	pod.Status = corev1.PodStatus{Phase: corev1.PodRunning, PodIP: ip, PodIPs: []corev1.PodIP{{IP: ip}}}
	if _, err := cs.CoreV1().Pods(pod.Namespace).UpdateStatus(context.Background(), pod, metav1.UpdateOptions{}); err != nil {
		t.Fatal(err)
	}
}
