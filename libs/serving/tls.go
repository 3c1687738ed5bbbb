package serving

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"flag"
	"fmt"
	"os"
)

// TLSFiles names the PEM files for mutual TLS. All empty means plaintext.
type TLSFiles struct {
	CertFile string // this service's certificate
	KeyFile  string // its private key
	CAFile   string // the CA that signs every peer's certificate
}

// RegisterFlags adds -tls-cert, -tls-key and -tls-ca to fs.
func (f *TLSFiles) RegisterFlags(fs *flag.FlagSet) {
	fs.StringVar(&f.CertFile, "tls-cert", "", "PEM certificate of this service; with -tls-key and -tls-ca turns on mTLS")
	fs.StringVar(&f.KeyFile, "tls-key", "", "PEM private key of -tls-cert")
	fs.StringVar(&f.CAFile, "tls-ca", "", "PEM CA certificate that peers' certificates must chain to")
}

// Enabled reports whether TLS is configured.
func (f TLSFiles) Enabled() bool { return f.CertFile != "" || f.KeyFile != "" || f.CAFile != "" }

// Validate checks that the files are all set or all empty.
func (f TLSFiles) Validate() error {
	if f.Enabled() && (f.CertFile == "" || f.KeyFile == "" || f.CAFile == "") {
		return errors.New("-tls-cert, -tls-key and -tls-ca must be given together")
	}
	return nil
}

func (f TLSFiles) load() (tls.Certificate, *x509.CertPool, error) {
	cert, err := tls.LoadX509KeyPair(f.CertFile, f.KeyFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("load key pair %s, %s: %w", f.CertFile, f.KeyFile, err)
	}
	pem, err := os.ReadFile(f.CAFile)
	if err != nil {
		return tls.Certificate{}, nil, fmt.Errorf("read CA: %w", err)
	}
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(pem) {
		return tls.Certificate{}, nil, fmt.Errorf("read CA %s: no PEM certificate in it", f.CAFile)
	}
	return cert, pool, nil
}

// ServerConfig returns a TLS config that presents the certificate and
// requires a client certificate signed by the CA.
func (f TLSFiles) ServerConfig() (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		ClientAuth:   tls.RequireAndVerifyClientCert,
		ClientCAs:    pool,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// ClientConfig returns a TLS config that presents the certificate and
// verifies the server against the CA. serverName overrides the name checked
// against the server's certificate; empty means the dialled host.
func (f TLSFiles) ClientConfig(serverName string) (*tls.Config, error) {
	cert, pool, err := f.load()
	if err != nil {
		return nil, err
	}
	return &tls.Config{
		Certificates: []tls.Certificate{cert},
		RootCAs:      pool,
		ServerName:   serverName,
		MinVersion:   tls.VersionTLS13,
	}, nil
}

// certName is the first DNS name of a certificate, used to verify it when
// the server calls itself.
func certName(c tls.Certificate) (string, error) {
	leaf := c.Leaf
	if leaf == nil {
		var err error
		if leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return "", fmt.Errorf("parse certificate: %w", err)
		}
	}
	if len(leaf.DNSNames) == 0 {
		return "", errors.New("TLS certificate has no DNS name; regenerate it with make certs")
	}
	return leaf.DNSNames[0], nil
}
