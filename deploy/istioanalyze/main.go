// Command istioanalyze runs every Istio analyzer (those of istioctl
// analyze) over rendered manifests, offline. istioctl analyze
// --use-kube=false skips the analyzers that need Pods and Services from a
// cluster; this adds, from the manifests themselves, what a cluster would
// have: one injected stand-in Pod per pod template (Deployments, Jobs,
// CronJobs), and the ingress gateway's Pod, Service and certificate
// Secret in istio-system. Istio's own analyzer packages do the work; this
// program only feeds them (make validate-istio).
//
//	istioanalyze FILE...
//
// It prints every message and exits 1 when one is a warning or worse.
package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"math/big"
	"os"
	"strings"
	"time"

	appsv1 "k8s.io/api/apps/v1"
	batchv1 "k8s.io/api/batch/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/intstr"
	"sigs.k8s.io/yaml"

	"istio.io/istio/pkg/config/analysis/analyzers"
	"istio.io/istio/pkg/config/analysis/diag"
	"istio.io/istio/pkg/config/analysis/local"
	"istio.io/istio/pkg/config/resource"
	"istio.io/istio/pkg/log"
)

func main() {
	if err := run(os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "istioanalyze:", err)
		os.Exit(1)
	}
}

func run(files []string, out io.Writer) error {
	if len(files) == 0 {
		return errors.New("usage: istioanalyze FILE...")
	}
	// The analyzers log every informer they sync; only their findings,
	// and errors, are of interest here.
	logs := log.DefaultOptions()
	logs.OutputPaths = []string{"stderr"}
	logs.SetDefaultOutputLevel(log.DefaultScopeName, log.ErrorLevel)
	for _, s := range log.Scopes() {
		logs.SetDefaultOutputLevel(s.Name(), log.ErrorLevel)
	}
	if err := log.Configure(logs); err != nil {
		return err
	}
	var docs [][]byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return err
		}
		docs = append(docs, bytes.Split(b, []byte("\n---"))...)
	}
	standIns, err := standIns(docs)
	if err != nil {
		return err
	}
	sa := local.NewSourceAnalyzer(analyzers.AllCombined(), resource.Namespace("recsys"), resource.Namespace("istio-system"), nil)
	var readers []local.ReaderSource
	for _, f := range files {
		r, err := os.Open(f)
		if err != nil {
			return err
		}
		defer r.Close()
		readers = append(readers, local.ReaderSource{Name: f, Reader: r})
	}
	readers = append(readers, local.ReaderSource{Name: "stand-ins", Reader: bytes.NewReader(standIns)})
	// The Test variant reads runtime kinds too (Pods, Services,
	// Namespaces): the stand-ins are why this program exists.
	if err := sa.AddTestReaderKubeSource(readers); err != nil {
		return err
	}
	// After the files: the first source fixes the kinds read, and the
	// defaults (Istio's own resources a cluster has) add to it.
	if err := sa.AddDefaultResources(); err != nil {
		return err
	}
	cancel := make(chan struct{})
	res, err := sa.Analyze(cancel)
	if err != nil {
		return err
	}
	// ExecutedAnalyzers lists every analyzer asked for, skipped or not.
	fmt.Fprintf(out, "istio analyzers: %d of %d ran; skipped for want of input: %v\n", len(res.ExecutedAnalyzers)-len(res.SkippedAnalyzers), len(res.ExecutedAnalyzers), res.SkippedAnalyzers)
	bad := 0
	for _, m := range res.Messages {
		fmt.Fprintln(out, m.String())
		if m.Type.Level() != diag.Info {
			bad++
		}
	}
	fmt.Fprintf(out, "istio analyzers: %d messages, %d warnings or errors\n", len(res.Messages), bad)
	if bad > 0 {
		return fmt.Errorf("%d warnings or errors", bad)
	}
	return nil
}

// standIns returns, as YAML, a Pod for each pod template of the documents
// (injected with a sidecar unless it opts out), and the ingress gateway.
func standIns(docs [][]byte) ([]byte, error) {
	var out bytes.Buffer
	emit := func(o any) error {
		b, err := yaml.Marshal(o)
		if err != nil {
			return err
		}
		out.WriteString("---\n")
		out.Write(b)
		return nil
	}
	injected := map[string]bool{}
	var templates []struct {
		name, ns string
		tpl      corev1.PodTemplateSpec
	}
	for _, d := range docs {
		var meta struct {
			Kind     string            `json:"kind"`
			Metadata metav1.ObjectMeta `json:"metadata"`
		}
		if err := yaml.Unmarshal(d, &meta); err != nil || meta.Kind == "" {
			continue
		}
		add := func(tpl corev1.PodTemplateSpec) {
			templates = append(templates, struct {
				name, ns string
				tpl      corev1.PodTemplateSpec
			}{strings.ToLower(meta.Kind) + "-" + meta.Metadata.Name, meta.Metadata.Namespace, tpl})
		}
		switch meta.Kind {
		case "Namespace":
			injected[meta.Metadata.Name] = meta.Metadata.Labels["istio-injection"] == "enabled"
		case "Deployment":
			var o appsv1.Deployment
			if err := yaml.Unmarshal(d, &o); err != nil {
				return nil, err
			}
			add(o.Spec.Template)
		case "Job":
			var o batchv1.Job
			if err := yaml.Unmarshal(d, &o); err != nil {
				return nil, err
			}
			add(o.Spec.Template)
		case "CronJob":
			var o batchv1.CronJob
			if err := yaml.Unmarshal(d, &o); err != nil {
				return nil, err
			}
			add(o.Spec.JobTemplate.Spec.Template)
		}
	}
	for _, t := range templates {
		pod := corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
			ObjectMeta: metav1.ObjectMeta{Name: t.name + "-standin", Namespace: t.ns, Labels: t.tpl.Labels, Annotations: map[string]string{}},
			Spec:       t.tpl.Spec}
		for k, v := range t.tpl.Annotations {
			pod.Annotations[k] = v
		}
		if injected[t.ns] && t.tpl.Labels["sidecar.istio.io/inject"] != "false" && t.tpl.Annotations["sidecar.istio.io/inject"] != "false" {
			pod.Annotations["sidecar.istio.io/status"] = `{"containers":["istio-proxy"],"initContainers":["istio-init"]}`
			pod.Spec.Containers = append(pod.Spec.Containers, corev1.Container{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.28.0"})
		}
		if err := emit(pod); err != nil {
			return nil, err
		}
	}
	gw := map[string]string{"istio": "ingressgateway", "app": "istio-ingressgateway"}
	if err := emit(corev1.Namespace{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Namespace"}, ObjectMeta: metav1.ObjectMeta{Name: "istio-system"}}); err != nil {
		return nil, err
	}
	if err := emit(corev1.Pod{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Pod"},
		ObjectMeta: metav1.ObjectMeta{Name: "istio-ingressgateway-standin", Namespace: "istio-system", Labels: gw,
			Annotations: map[string]string{"sidecar.istio.io/inject": "false"}},
		Spec: corev1.PodSpec{ServiceAccountName: "istio-ingressgateway-service-account", Containers: []corev1.Container{{Name: "istio-proxy", Image: "docker.io/istio/proxyv2:1.28.0",
			Ports: []corev1.ContainerPort{{ContainerPort: 8080}, {ContainerPort: 8443}}}}}}); err != nil {
		return nil, err
	}
	if err := emit(corev1.Service{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Service"},
		ObjectMeta: metav1.ObjectMeta{Name: "istio-ingressgateway", Namespace: "istio-system", Labels: gw},
		Spec: corev1.ServiceSpec{Selector: gw, Ports: []corev1.ServicePort{
			{Name: "http2", Port: 80, TargetPort: intstr.FromInt32(8080)},
			{Name: "https", Port: 443, TargetPort: intstr.FromInt32(8443)}}}}); err != nil {
		return nil, err
	}
	// What deploy/README.md asks the operator to create: the gateway's
	// certificate, here a self-signed one made for the run.
	crt, key, err := selfSigned("recsys.example.com")
	if err != nil {
		return nil, err
	}
	if err := emit(corev1.Secret{TypeMeta: metav1.TypeMeta{APIVersion: "v1", Kind: "Secret"},
		ObjectMeta: metav1.ObjectMeta{Name: "recsys-tls", Namespace: "istio-system"}, Type: corev1.SecretTypeTLS,
		Data: map[string][]byte{"tls.crt": crt, "tls.key": key}}); err != nil {
		return nil, err
	}
	return out.Bytes(), nil
}

// selfSigned returns a PEM certificate and key for host, valid for a day.
func selfSigned(host string) (crt, key []byte, err error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, nil, err
	}
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: host}, DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		return nil, nil, err
	}
	kder, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		return nil, nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kder}), nil
}
