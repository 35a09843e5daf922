package integration

import (
	"encoding/xml"
	"os"
)

func xmlUnmarshal(doc string, v any) error { return xml.Unmarshal([]byte(doc), v) }

func removeFile(p string) { os.Remove(p) }
