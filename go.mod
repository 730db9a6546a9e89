module github.com/slurm-dmtcp/slurm-dmtcp

go 1.26.8

require (
	github.com/coreos/go-systemd/v22 v22.7.0
	github.com/mattn/go-sqlite3 v1.14.53
	github.com/sirupsen/logrus v1.10.2
	github.com/stretchr/testify v1.12.1
	golang.org/x/sys v0.13.0
)

require go.yaml.in/yaml/v3 v3.0.5 // indirect
