package httpapi

import (
	"context"
	"net/http"

	"github.com/knib/knib/internal/api"
	"github.com/knib/knib/internal/domain"
	"github.com/knib/knib/internal/service/storages"
)

func (h *Handler) registerStorages() {
	svc := h.svc
	ok, created, accepted := http.StatusOK, http.StatusCreated, http.StatusAccepted

	add(h, "POST", "/storages", "storages", "Add a backup storage to a zone (admin); an agent of the zone must find the directory", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.StorageCreate) (api.Storage, error) {
			st, err := svc.Storages.AddStorage(ctx, p, storages.StorageSpec{Zone: b.Zone, Path: b.Path, Name: b.Name, Tag: b.Tag})
			return h.storageToAPI(ctx, st), err
		})
	add(h, "GET", "/storages", "storages", "List backup storages with capacity and usage (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, q api.StorageQuery, _ api.Empty) ([]api.Storage, error) {
			list, err := svc.Storages.Storages(ctx, p, q.Zone)
			return mapList(list, func(st domain.Storage) api.Storage { return h.storageToAPI(ctx, st) }), err
		})
	add(h, "GET", "/storages/{storage}", "storages", "Show a backup storage (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Storage, error) {
			st, err := svc.Storages.Storage(ctx, p, r.PathValue("storage"))
			return h.storageToAPI(ctx, st), err
		})
	add(h, "POST", "/storages/{storage}/disable", "storages", "Disable a backup storage: no new chain goes there (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Storage, error) {
			st, err := svc.Storages.SetStorageEnabled(ctx, p, r.PathValue("storage"), false)
			return h.storageToAPI(ctx, st), err
		})
	add(h, "POST", "/storages/{storage}/enable", "storages", "Enable a backup storage (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (api.Storage, error) {
			st, err := svc.Storages.SetStorageEnabled(ctx, p, r.PathValue("storage"), true)
			return h.storageToAPI(ctx, st), err
		})
	add(h, "DELETE", "/storages/{storage}", "storages", "Remove a backup storage (admin); refused while it holds live backups; its directory is left alone", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) (Health, error) {
			return Health{Status: "removed"}, svc.Storages.RemoveStorage(ctx, p, r.PathValue("storage"))
		})
	add(h, "POST", "/storages/migrate", "storages", "Move backups (whole chains) to another storage of the zone (admin); answers with an operation", accepted,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.StorageMigrate) (api.Operation, error) {
			op, err := svc.Storages.MigrateStorage(ctx, p, b.From, b.To, b.VM)
			return operationToAPI(op), err
		})

	add(h, "GET", "/zones", "zones", "List zones with their hosts and storages (admin)", ok,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, _ api.Empty) ([]api.Zone, error) {
			list, err := svc.Storages.Zones(ctx, p)
			if err != nil {
				return nil, err
			}
			hosts, _ := svc.Hosts.ListHosts(ctx, p)
			storages, _ := svc.Storages.StorageCatalogue(ctx)
			return mapList(list, func(z domain.Zone) api.Zone {
				out := api.Zone{ID: z.ID, Name: z.Name}
				for _, x := range hosts {
					if x.ZoneID == z.ID {
						out.Hosts++
					}
				}
				for _, st := range storages {
					if st.ZoneID == z.ID {
						out.Storages++
					}
				}
				return out
			}), nil
		})
	add(h, "POST", "/zones", "zones", "Create a zone (admin)", created,
		func(ctx context.Context, p domain.Principal, r *http.Request, _ none, b api.ZoneCreate) (api.Zone, error) {
			z, err := svc.Storages.CreateZone(ctx, p, b.Name)
			return api.Zone{ID: z.ID, Name: z.Name}, err
		})
}

func (h *Handler) storageToAPI(ctx context.Context, st domain.Storage) api.Storage {
	out := api.Storage{ID: st.ID, Name: st.Name, Path: st.Path, Tag: st.Tag, Enabled: st.Enabled,
		Capacity: st.Capacity, Free: st.Free, Used: st.Used, Measured: optTime(st.Measured), Created: st.Created}
	if st.ZoneID != "" {
		out.Zone = h.svc.Kernel.ZoneName(ctx, st.ZoneID)
	}
	return out
}
