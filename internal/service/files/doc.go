// Package files is file-level restore: browsing the file systems inside a
// backup's disks, extracting files from them as a tar stream, and writing
// them back into a running VM through its guest agent.
//
// Vocabulary:
//
//   - volume: a device of the backup that holds a file system: a whole disk
//     ("vda"), a partition ("vda1") or an LVM logical volume ("VG/LV").
//     Requests name a volume, or a disk that has exactly one, or nothing
//     when the backup has exactly one.
//   - path: an absolute path inside the volume's file system; it is resolved
//     there only (".." stops at its root, absolute symlinks point into it).
//   - helper: the isolated appliance an agent runs to read a backup's file
//     systems (agentapi.Files); it serves one backup, is reused while calls
//     come and ends after backup.file.helper.idle.timeout, at most
//     backup.file.helper.max.per.host per host.
//
// Only backups whose offering allows file extraction (AllowExtractFile) are
// read, and users reach only their own account's backups. A backup is read
// while it is BackedUp or Restoring (being read by a restore); its VM may
// run or be gone.
package files
