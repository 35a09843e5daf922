package main

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
