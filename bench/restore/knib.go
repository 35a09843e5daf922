package main

// restoreResult is what the benchmark reads of `knib backup restore -o json`.
type restoreResult struct {
	Disks []struct {
		Target   string `json:"target"`
		Path     string `json:"path"`
		Verified string `json:"verified"`
	} `json:"disks"`
}

// vmInfo is what the benchmark reads of `knib vm show -o json`.
type vmInfo struct {
	State     string `json:"state"`
	LastError string `json:"last_error"`
	Disks     []struct {
		Target  string `json:"target"`
		Source  string `json:"source"`
		Backing []struct {
			Path string `json:"path"`
		} `json:"backing_chain"`
	} `json:"disks"`
}
