package main

// backupInfo is what the benchmark reads of `knib backup create/show -o json`.
type backupInfo struct {
	ID     string `json:"id"`
	Type   string `json:"type"`
	Status string `json:"status"`
	Size   int64  `json:"size"`
	Error  string `json:"error"`
	Files  []struct {
		Disk string `json:"disk"`
		Path string `json:"path"` // relative to the backup storage
		Size int64  `json:"size"`
	} `json:"files"`
}

// fileListing is what the benchmark reads of `knib backup files -o json`:
// the volumes (no PATH) or one directory's entries.
type fileListing struct {
	Volumes []struct {
		Name      string `json:"name"`
		FSType    string `json:"fs_type"`
		Browsable bool   `json:"browsable"`
	} `json:"volumes"`
	Volume  string `json:"volume"`
	Path    string `json:"path"`
	Entries []struct {
		Name string `json:"name"`
		Type string `json:"type"`
		Size int64  `json:"size"`
	} `json:"entries"`
}
